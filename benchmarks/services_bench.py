"""Time-to-ready and teardown of the services layer, median of N.

    python benchmarks/services_bench.py --backend process [--runs 5]

Prints: both services ready in parallel (what a run pays) vs each alone (the slower one is
the physical limit), teardown, the first run on a fresh state dir (process backend: builds
the Postgres template), and the harness's peak RSS. Library imports happen before timing:
the harness has loaded temporalio and psycopg long before it starts services.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: F401  (warm imports, see the docstring)
import temporalio.client  # noqa: F401

from staging.services.base import Backend, ServiceSpec
from staging.services.environment import Environment
from staging.services.password import generate_password
from staging.services.process_backend import ProcessBackend
from staging.services.select import choose_backend
from staging.services.state import default_base_dir


def _spec() -> ServiceSpec:
    return ServiceSpec(run_id=f"bench-{uuid.uuid4().hex[:8]}")


def _alone(backend: Backend, which: str) -> float:
    spec = _spec()
    service = backend.postgres(spec, generate_password()) if which == "postgres" else None
    service = service or backend.temporal(spec)
    begin = time.monotonic()
    try:
        service.start()
        service.wait_ready(120)
        return time.monotonic() - begin
    finally:
        service.stop()


def _parallel(backend: Backend) -> tuple[float, float]:
    begin = time.monotonic()
    env = Environment.start(_spec(), backend, ready_timeout=120)
    ready = time.monotonic() - begin
    return ready, env.stop()


def _median(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["process", "docker"], default="process")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="staging-bench-", dir=default_base_dir().parent))
    state.chmod(0o711)
    try:
        if args.backend == "process":
            backend: Backend = ProcessBackend(state)
        else:
            backend = choose_backend("docker")[0]
        first_ready, _ = _parallel(backend)  # process: includes building the template
        pg = _median(args.runs, lambda: _alone(backend, "postgres"))
        tp = _median(args.runs, lambda: _alone(backend, "temporal"))
        pairs = [_parallel(backend) for _ in range(args.runs)]
        ready = statistics.median(p[0] for p in pairs)
        teardown = statistics.median(p[1] for p in pairs)
    finally:
        shutil.rmtree(state, ignore_errors=True)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    slower = max(pg, tp)
    print(f"backend {args.backend}, median of {args.runs}")
    print(f"  postgres alone          {pg:6.2f} s")
    print(f"  temporal alone          {tp:6.2f} s")
    print(f"  both ready (parallel)   {ready:6.2f} s  = {ready / slower:.2f}x the slower alone")
    print(f"  teardown                {teardown:6.2f} s")
    print(f"  first run, fresh state  {first_ready:6.2f} s")
    print(f"  harness peak RSS        {peak_mib:6.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
