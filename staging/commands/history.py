"""`staging history`: recent runs, newest first — time, tree, commit, verdict, class."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from staging.gate import RunSummary, VerdictStore, app_dir_of


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("history", help="list recent runs and their verdicts")
    p.add_argument("--project", type=Path, default=Path("."), help="dir with pyproject.toml")
    p.add_argument("-n", type=int, default=20, metavar="N", help="how many runs (default 20)")


def _when(summary: RunSummary) -> str:
    try:
        return datetime.fromisoformat(summary.started_at).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return summary.run_id[:15]


def rows(runs: list[RunSummary]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [("time", "run", "tree", "commit", "verdict", "class")]
    for r in runs:
        tree = r.tree
        commit = str(tree.get("commit") or "")[:8] + ("+" if tree.get("dirty") else "")
        out.append(
            (
                _when(r),
                r.run_id,
                str(tree.get("hash") or "-")[:12],
                commit or "-",
                r.status,
                r.failure_class or "",
            )
        )
    return out


def run(args: argparse.Namespace) -> int:
    store = VerdictStore(app_dir_of(args.project))
    runs = store.runs(limit=max(1, args.n))
    if not runs:
        sys.stdout.write(f"no runs recorded in {store.runs_dir}\n")
        return 0
    table = rows(runs)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        sys.stdout.write("\n")
    return 0
