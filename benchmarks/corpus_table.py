"""The corpus table of `nox -s bench`: per failure-corpus case, is the class right, and is
the deciding line on the console within the diagnosis' first 12 lines? (issue 12)

    python benchmarks/corpus_table.py [--backend process|docker] [--out PATH] [CASE...]

Each case is materialised from `tests/corpus` and run with `python -m staging run`, as a
user would, with stdout captured (plain mode, as in CI). A case's deciding lines are its
`deciding` entries, else its `evidence` (tests/corpus/__init__.py). Results go to
benchmarks/results/corpus.json and .md next to it. Cases run one after another: the
machine's cores are shared, and the table is about diagnoses, not speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.corpus import CASES, Case, load_case, materialize

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "corpus.json"
_CONSOLE_LINES = 12


@dataclass(frozen=True)
class Row:
    case: str
    expected: str  # the expected class, "pass" for a passing case
    observed: str  # the verdict's class, "pass", or what went wrong
    class_ok: bool
    deciding_ok: bool
    missing: tuple[str, ...]  # deciding lines not within the console's first 12 lines
    seconds: float


def judge(case: Case, verdict: dict[str, object] | None, console: str, seconds: float) -> Row:
    """One row from a finished run (pure: no processes)."""
    diagnosis = verdict.get("diagnosis") if verdict else None
    if verdict is None:
        observed = "no verdict"
    elif isinstance(diagnosis, dict):
        observed = str(diagnosis.get("class", ""))
    else:
        observed = "pass"
    class_ok = verdict is not None and case.accepts("" if observed == "pass" else observed)
    missing = tuple(case.deciding_missing(console)) if case.expected == "fail" else ()
    return Row(
        case=case.name,
        expected=case.failure_class or "pass",
        observed=observed,
        class_ok=class_ok,
        deciding_ok=not missing,
        missing=missing,
        seconds=round(seconds, 2),
    )


def run_case(name: str, backend: str, scratch: Path) -> Row:
    case = load_case(name)
    app = materialize(name, scratch / name)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "staging", "run", "--project", str(app), "--backend", backend],
        cwd=app,
        env={**os.environ, "CI": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.monotonic() - started
    verdicts = sorted((app / ".staging" / "runs").glob("*/verdict.json"))
    verdict = json.loads(verdicts[-1].read_text()) if verdicts else None
    return judge(case, verdict, proc.stdout, seconds)


def render(rows: Sequence[Row], backend: str) -> str:
    good_class = sum(r.class_ok for r in rows)
    good_line = sum(r.deciding_ok for r in rows)
    lines = [
        f"Failure corpus, {backend} backend: class correct {good_class}/{len(rows)}, "
        f"deciding line in the console's first {_CONSOLE_LINES} diagnosis lines "
        f"{good_line}/{len(rows)}",
        "",
        "| case | expected | observed | class | deciding line | s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        line = "yes" if r.deciding_ok else "NO: " + "; ".join(r.missing)
        lines.append(
            f"| {r.case} | {r.expected} | {r.observed} | {'yes' if r.class_ok else 'NO'} "
            f"| {line} | {r.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/corpus_table.py")
    parser.add_argument("--backend", choices=["process", "docker"], default="process")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("cases", nargs="*", metavar="CASE", help="default: every case")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}")
    scratch = Path(tempfile.mkdtemp(prefix="staging-corpus-table-"))
    try:
        rows = [run_case(name, args.backend, scratch) for name in args.cases or CASES]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = render(rows, args.backend)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"backend": args.backend, "rows": [asdict(r) for r in rows]}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table)
    return 0 if all(r.class_ok and r.deciding_ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
