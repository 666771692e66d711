"""`staging run` as a user runs it: a subprocess, timed from spawn to exit, verdict parsed.

The wall time includes the interpreter's start and imports, the verdict, the reports and
teardown: everything a developer waits for. The verdict's phase durations give the
breakdown; `startup` (spawn -> the run's own clock starts) and `after` (verdict built ->
process gone: reports, teardown, interpreter exit) are what the phases do not cover.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.measure import BenchError, MemoryPeak, RssSampler, Stat, python_env


@dataclass
class RunSample:
    wall: float
    exit_code: int
    status: str
    failure_class: str  # "" when it passed
    phases: dict[str, float] = field(default_factory=dict)
    startup: float = 0.0
    after: float = 0.0
    memory: MemoryPeak = field(default_factory=MemoryPeak)
    cause: str = ""

    def breakdown(self) -> dict[str, float]:
        return {"startup": self.startup, **self.phases, "verdict+teardown+exit": self.after}


def command(app: Path, backend: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "staging",
        "run",
        "--project",
        str(app),
        "--backend",
        backend,
        "--json",
    ]


def spawn(app: Path, backend: str, stderr_path: Path) -> subprocess.Popen[bytes]:
    with stderr_path.open("ab") as err:
        return subprocess.Popen(
            command(app, backend),
            cwd=app,
            env=python_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )


def finish(
    proc: subprocess.Popen[bytes], spawned_wall: float, spawned: float, timeout: float
) -> RunSample:
    """Wait for a spawned run and turn its verdict into a sample."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BenchError(f"staging run did not finish in {timeout}s") from None
    ended = time.monotonic()
    exited_wall = time.time()
    return parse(
        out.decode(errors="replace"), proc.returncode, ended - spawned, spawned_wall, exited_wall
    )


def parse(
    stdout: str, exit_code: int, wall: float, spawned_wall: float, exited_wall: float
) -> RunSample:
    try:
        verdict: dict[str, Any] = json.loads(stdout)
    except json.JSONDecodeError:
        raise BenchError(
            f"staging run exited {exit_code} without a JSON verdict: {stdout[-400:]!r}"
        ) from None
    diagnosis = verdict.get("diagnosis") or {}
    started = datetime.fromisoformat(verdict["started_at"]).timestamp()
    finished = datetime.fromisoformat(verdict["finished_at"]).timestamp()
    return RunSample(
        wall=wall,
        exit_code=exit_code,
        status=str(verdict.get("status")),
        failure_class=str(diagnosis.get("class") or ""),
        phases={p["name"]: float(p["duration"]) for p in verdict.get("phases", [])},
        startup=max(0.0, started - spawned_wall),
        after=max(0.0, exited_wall - finished),
        cause=str(diagnosis.get("cause") or "")[:300],
    )


def staging_run(app: Path, backend: str, logs: Path, timeout: float = 600) -> RunSample:
    """One `staging run --json`, with the harness's memory sampled every 50 ms."""
    logs.mkdir(parents=True, exist_ok=True)
    with RssSampler() as sampler:
        spawned_wall, spawned = time.time(), time.monotonic()
        proc = spawn(app, backend, logs / "staging-run.stderr")
        sampler.add(proc.pid)
        sample = finish(proc, spawned_wall, spawned, timeout)
    sample.memory = sampler.peak
    return sample


def expect(sample: RunSample, failure_class: str, what: str) -> RunSample:
    """A benchmark of a run that did not reach the expected verdict measures nothing."""
    if sample.failure_class != failure_class:
        wanted = failure_class or "a green run"
        raise BenchError(
            f"{what}: expected {wanted}, got exit {sample.exit_code} "
            f"{sample.failure_class or 'passed'}: {sample.cause}"
        )
    return sample


def summarize_runs(samples: list[RunSample]) -> dict[str, Any]:
    names: list[str] = []
    for sample in samples:
        names += [n for n in sample.breakdown() if n not in names]
    return {
        "wall": Stat.of(s.wall for s in samples).to_dict(),
        "breakdown": {
            name: Stat.of(s.breakdown()[name] for s in samples if name in s.breakdown()).to_dict()
            for name in names
        },
        "harness_peak_mib": Stat.of(s.memory.harness for s in samples).to_dict(1),
        "children_total_peak_mib": Stat.of(s.memory.children for s in samples).to_dict(1),
    }
