"""`nox -s bench`: time to a verdict, against the physical limit and what a team would run.

    python benchmarks/run.py [--runs 5] [--warmup 1] [--backend all|process|docker] [--quick]
                             [--only green,red,limit,baselines,scale] [--out PATH]

Every figure is the median (with min and max) of `--runs` measurements after `--warmup`
discarded ones, all in one invocation so ratios compare like with like. Results go to
benchmarks/results/latest.json (+ latest.md, the README table) and are printed as tables.
The machine's load is recorded per section: other people's tests share these cores.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.options import parse_options

# Read by testcontainers at import time, and inherited by every child.
DEFAULT_ENV = {"TESTCONTAINERS_RYUK_DISABLED": "true", "TC_HOST": "127.0.0.1"}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts = parse_options(args, (__doc__ or "").splitlines()[0])
    for name, value in DEFAULT_ENV.items():
        os.environ.setdefault(name, value)
    if opts.render is not None:
        from benchmarks.bench import render

        return render(opts.render, opts.out)
    from benchmarks.bench import execute

    return execute(opts, args)


if __name__ == "__main__":
    sys.exit(main())
