"""`backend = "attach"` (issue 14): time to green against the process backend, and 8 runs at once.

    python benchmarks/attach.py [--runs 3] [--concurrent 8]

A cluster (Temporal dev server + Postgres, started outside staging as in
tests/integration/attach) serves every attached run. Measured, each a `staging run`
subprocess of the tally app (tests/integration/attach/app) from start to exit:

- time to green, attached vs `--backend process` (which starts its own services).
  Target: attach <= 0.7x process (no service start);
- N concurrent attached runs (one shared namespace, each on its own suffixed task queue
  and database) against the same N one after the other: the wall times and their ratio.

Results go to benchmarks/results/attach.json (+ .md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET = 0.7
PIPELINE = ("--pipeline", "tally")


def _run(project: Path, cluster: Any, *args: str) -> subprocess.Popen[str]:
    from tests.integration.attach.conftest import staging_run

    return staging_run(project, cluster, *PIPELINE, *args)


def _green(proc: subprocess.Popen[str]) -> None:
    out = proc.communicate(timeout=600)[0]
    if proc.returncode != 0:
        raise RuntimeError(f"staging run exited {proc.returncode}: {out[-2000:]}")


def _one(project: Path, cluster: Any, *args: str) -> float:
    begin = time.monotonic()
    _green(_run(project, cluster, *args))
    return time.monotonic() - begin


def _stat(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "values": [round(v, 3) for v in values],
    }


def measure(runs: int, concurrent: int) -> dict[str, Any]:
    from tests.integration.attach.cluster import running_cluster
    from tests.integration.attach.conftest import make_project

    scratch = Path(tempfile.mkdtemp(prefix="bench-attach-"))
    try:
        with running_cluster() as cluster:
            project = make_project(cluster, scratch / "app")
            for args in ((), ("--backend", "process")):  # warm-up: caches, templates
                _one(project, cluster, *args)
            attach, process = [], []
            for _ in range(runs):  # interleaved, so load drift hits both alike
                attach.append(_one(project, cluster))
                process.append(_one(project, cluster, "--backend", "process"))
            apps = [make_project(cluster, scratch / f"c{i}") for i in range(concurrent)]
            begin = time.monotonic()
            for proc in [_run(app, cluster) for app in apps]:
                _green(proc)
            together = time.monotonic() - begin
            begin = time.monotonic()
            for app in apps:
                _green(_run(app, cluster))
            one_by_one = time.monotonic() - begin
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ratio = statistics.median(attach) / statistics.median(process)
    return {
        "runs": runs,
        "load": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "attach": _stat(attach),
        "process": _stat(process),
        "ratio": round(ratio, 3),
        "target": TARGET,
        "met": ratio <= TARGET,
        "concurrent": {
            "n": concurrent,
            "together": round(together, 3),
            "sequential": round(one_by_one, 3),
            "speedup": round(one_by_one / together, 3),
        },
    }


def markdown(r: dict[str, Any]) -> str:
    a, p, c = r["attach"], r["process"], r["concurrent"]
    return (
        "| measure | value |\n|---|---|\n"
        f"| time to green, attach (median, min-max, n={r['runs']}) "
        f"| {a['median']:.2f}s ({a['min']:.2f}-{a['max']:.2f}) |\n"
        f"| time to green, process | {p['median']:.2f}s ({p['min']:.2f}-{p['max']:.2f}) |\n"
        f"| attach / process | {r['ratio']:.2f}x (target <= {r['target']}x: "
        f"{'met' if r['met'] else 'MISSED'}) |\n"
        f"| {c['n']} attached runs at once | {c['together']:.2f}s |\n"
        f"| {c['n']} attached runs one after the other | {c['sequential']:.2f}s "
        f"({c['speedup']:.2f}x; load {r['load']:.1f} on {r['cpus']} cpus) |\n"
    )


def bench_attach(runs: int = 3, concurrent: int = 8, out: Path | None = None) -> int:
    """Measure, write attach.json / attach.md beside `out` (default benchmarks/results)."""
    result = measure(runs, concurrent)
    folder = out.parent if out is not None else REPO / "benchmarks" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "attach.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (folder / "attach.md").write_text(table)
    print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=8)
    args = parser.parse_args(argv)
    return bench_attach(args.runs, args.concurrent)


if __name__ == "__main__":
    sys.exit(main())
