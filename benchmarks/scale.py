"""Scale: concurrent pipeline triggers against one worker, and concurrent `staging run`s.

Triggers: one environment and one worker (the bench process holds the environment, so it
is the "harness" here); N triggers started at once; wall time until the last one exits.
Runs: N `staging run`s at once, each on its own copy of the app (own run id, ports, state
dir entries, workspace); all must pass. Memory: harness RSS (the largest single harness
and their sum) and the total of their descendants, sampled every 50 ms. On the docker
backend the containers are not descendants: their memory is not in these figures.
"""

from __future__ import annotations

import os
import subprocess
import time
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.app import App, stop, worker_to_polling
from benchmarks.limit import AppSpecBackend, app_environment
from benchmarks.measure import BenchError, RssSampler, Stat, repeat
from benchmarks.staging_runs import finish, spawn


def _triggers_once(app: App, n: int, rep: int) -> tuple[float, dict[str, float], int]:
    tags = [f"-{n}x-{rep}-{i}" for i in range(n)]
    with RssSampler() as sampler:
        sampler.add(os.getpid())
        begin = time.monotonic()
        procs = [app.start("trigger", tag) for tag in tags]
        try:
            for proc in procs:
                proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{n} concurrent triggers did not finish in 300 s") from None
        finally:
            for proc in procs:
                stop(proc)
        wall = time.monotonic() - begin
    failed = [t for t in tags if not app.completed(t)]
    if failed:
        raise BenchError(
            f"{len(failed)} of {n} triggers did not complete; {app.tail('trigger', failed[0])}"
        )
    aborted_at_exit = sum(1 for p in procs if p.returncode != 0)
    return wall, sampler.peak.to_dict(), aborted_at_exit


def measure_triggers(
    backend: AppSpecBackend, app: App, levels: list[int], runs: int, warmup: int
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with app_environment(backend, app) as (env, _):
        worker, _ready = worker_to_polling(app, env.temporal)
        try:
            for n in levels:
                samples = repeat(runs, warmup, partial(_triggers_once, app, n))
                results[str(n)] = {
                    "wall": Stat.of(s[0] for s in samples).to_dict(),
                    "harness_peak_mib": max(s[1]["harness_peak_mib"] for s in samples),
                    "children_total_peak_mib": max(
                        s[1]["children_total_peak_mib"] for s in samples
                    ),
                    "aborted_at_exit": sum(s[2] for s in samples),
                }
        finally:
            stop(worker)
    return results


def _runs_once(
    apps: list[Path], backend: str, logs: Path, _rep: int
) -> tuple[float, list[float], dict[str, Any]]:
    logs.mkdir(parents=True, exist_ok=True)
    with RssSampler() as sampler:
        begin_wall, begin = time.time(), time.monotonic()
        procs = [spawn(app, backend, logs / f"concurrent-{i}.stderr") for i, app in enumerate(apps)]
        for proc in procs:
            sampler.add(proc.pid)
        samples = [finish(proc, begin_wall, begin, timeout=600) for proc in procs]
        wall = time.monotonic() - begin
    failures = [f"{s.failure_class}: {s.cause}" for s in samples if s.exit_code != 0]
    return wall, [s.wall for s in samples], {**sampler.peak.to_dict(), "failures": failures}


def measure_runs(
    apps: list[Path], backend: str, levels: list[int], runs: int, warmup: int, logs: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for n in levels:
        samples = repeat(runs, warmup, partial(_runs_once, apps[:n], backend, logs))
        results[str(n)] = {
            "wall": Stat.of(s[0] for s in samples).to_dict(),
            "per_run_wall": Stat.of(w for s in samples for w in s[1]).to_dict(),
            "harness_peak_mib": max(s[2]["harness_peak_mib"] for s in samples),
            "harnesses_total_peak_mib": max(s[2]["harnesses_total_peak_mib"] for s in samples),
            "children_total_peak_mib": max(s[2]["children_total_peak_mib"] for s in samples),
            "runs_failed": sum(len(s[2]["failures"]) for s in samples),
            "failures": [f for s in samples for f in s[2]["failures"]][:5],
        }
    return results
