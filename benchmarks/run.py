"""`nox -s bench`: time to a verdict, against the physical limit and what a team would run.

    python benchmarks/run.py [--runs 5] [--warmup 1] [--backend all|process|docker] [--quick]
                             [--only green,red,limit,baselines,scale] [--out PATH]
                             [--gallery-only | --no-gallery]

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
    from benchmarks.gallery import bench_gallery, gallery_flags

    args, gallery = gallery_flags(args)  # --gallery-only / --no-gallery (benchmarks/gallery.py)
    opts = parse_options(args, (__doc__ or "").splitlines()[0])
    for name, value in DEFAULT_ENV.items():
        os.environ.setdefault(name, value)
    if opts.render is not None:
        from benchmarks.bench import render

        return render(opts.render, opts.out)
    from benchmarks.bench import execute

    if gallery == "only":
        return bench_gallery(opts)
    code = execute(opts, args)
    if gallery == "run" and not opts.quick:
        code = bench_gallery(opts) or code
    if opts.quick:
        return code
    # The pytest plugin (issue 16): fresh database vs raw CREATE DATABASE, session start.
    from benchmarks.pytest_plugin import bench_pytest_plugin

    code = bench_pytest_plugin(min(opts.runs, 3), opts.backends, opts.out) or code
    # The rollout rehearsal (issue 15): `--rollout` against one pipeline's own time.
    from benchmarks.rollout import bench_rollout

    code = bench_rollout(min(opts.runs, 3), opts.backends, opts.out) or code
    # Attach (issue 14): time to green against process, 8 concurrent attached runs.
    from benchmarks.attach import bench_attach

    code = bench_attach(min(opts.runs, 5), 8, opts.out) or code
    # Shards (issue 14): N = 2 on a 4-pipeline app, on one machine and one per shard.
    from benchmarks.shards import bench_shards

    code = bench_shards(min(opts.runs, 3), opts.backends, opts.out) or code
    # The corpus table (issue 12): per case, class right and deciding line on the console.
    from benchmarks import corpus_table

    # A measurement: a wrong row shows in the table (and fails the corpus tests), not here.
    corpus_table.main(["--out", str(opts.out.with_name("corpus.json"))])
    return code


if __name__ == "__main__":
    sys.exit(main())
