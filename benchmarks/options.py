"""The benchmark's command line: which sections, how many runs, where results go.

Kept free of heavy imports so `--help` and option errors answer at once.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("green", "red", "limit", "baselines", "scale")
RED_CASES = ("env-file-removed", "sandbox-structlog")
DEFAULT_OUT = REPO / "benchmarks" / "results" / "latest.json"


@dataclass
class Options:
    runs: int = 5
    warmup: int = 1
    backends: list[str] = field(default_factory=lambda: ["process", "docker"])
    sections: tuple[str, ...] = SECTIONS
    red_cap: float = 150.0
    trigger_levels: list[int] = field(default_factory=lambda: [1, 4, 16])
    run_levels: list[int] = field(default_factory=lambda: [1, 2, 4])
    out: Path = DEFAULT_OUT
    quick: bool = False
    render: Path | None = None  # re-render tables from a results file, measure nothing


def _sections(text: str) -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        named = ", ".join(unknown) or "(none)"
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {named}; choose from {', '.join(SECTIONS)}"
        )
    return chosen


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser(description: str = "") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=description)
    parser.add_argument("--runs", type=_positive, default=None, help="measured runs (default 5)")
    parser.add_argument("--warmup", type=int, default=None, help="discarded runs (default 1)")
    parser.add_argument("--backend", choices=["all", "process", "docker"], default="all")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 run, no warm-up, small scale levels"
    )
    parser.add_argument("--only", type=_sections, default=SECTIONS, metavar="SECTIONS")
    parser.add_argument(
        "--red-cap",
        type=float,
        default=None,
        help="give up on a baseline's red pipeline after S seconds (default 150; quick 15)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: print the tables of a results file and write its .md next to --out",
    )
    return parser


def parse_options(argv: Sequence[str] | None = None, description: str = "") -> Options:
    args = build_parser(description).parse_args(argv)
    quick = bool(args.quick)
    opts = Options(
        runs=args.runs or (1 if quick else 5),
        warmup=args.warmup if args.warmup is not None else (0 if quick else 1),
        backends=["process", "docker"] if args.backend == "all" else [args.backend],
        sections=args.only,
        red_cap=args.red_cap or (15.0 if quick else 150.0),
        out=args.out,
        quick=quick,
        render=args.render,
    )
    if opts.warmup < 0:
        build_parser().error("--warmup must be >= 0")
    if quick:
        opts.trigger_levels, opts.run_levels = [1, 4], [1, 2]
    return opts


def save_section(out: Path, name: str, data: object, table: str) -> Path:
    """A section's results beside `out`: `<name>.json` (every sample) and `<name>.md`; the
    table is printed too."""
    target = out.with_name(f"{name}.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n")
    target.with_suffix(".md").write_text(table)
    print(table)
    return target
