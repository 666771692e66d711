"""Statistics, repetition and memory sampling shared by every section of the benchmark.

Nothing here knows about staging: a figure is a list of samples summarised as median, min
and max; memory is sampled with psutil every 50 ms so short peaks between phases are seen.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil  # type: ignore[import-untyped]

T = TypeVar("T")
MIB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """A measurement could not be taken (a command failed where it must not)."""


def python_env() -> dict[str, str]:
    """The bench's own environment for Python children (`python -m staging`, baselines)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    env.setdefault("TC_HOST", "127.0.0.1")
    return env


@dataclass(frozen=True)
class Stat:
    """One figure: the samples of a repeated measurement (seconds, MiB, a ratio...)."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("a Stat needs at least one sample")

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        return cls(tuple(float(v) for v in values))

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def to_dict(self, digits: int = 3) -> dict[str, Any]:
        return {
            "median": round(self.median, digits),
            "min": round(self.min, digits),
            "max": round(self.max, digits),
            "n": self.n,
            "values": [round(v, digits) for v in self.values],
        }

    def brief(self, unit: str = "s", digits: int = 2) -> str:
        """`7.31 s (6.90-8.02, n=5)`: the form the printed tables use."""
        median = f"{self.median:.{digits}f} {unit}"
        if self.n == 1:
            return f"{median} (n=1)"
        return f"{median} ({self.min:.{digits}f}-{self.max:.{digits}f}, n={self.n})"


def ratio(numerator: Stat | float | None, denominator: Stat | float | None) -> float | None:
    """Ratio of medians; None when either side is missing or the denominator is zero."""
    if numerator is None or denominator is None:
        return None
    top = numerator.median if isinstance(numerator, Stat) else numerator
    bottom = denominator.median if isinstance(denominator, Stat) else denominator
    return round(top / bottom, 3) if bottom else None


def repeat(runs: int, warmup: int, measure: Callable[[int], T]) -> list[T]:
    """`measure(i)` `warmup` times (discarded: caches, first-run templates), then `runs` times."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs} warmup={warmup}")
    for i in range(warmup):
        measure(-1 - i)
    return [measure(i) for i in range(runs)]


def load_snapshot() -> dict[str, Any]:
    """The machine's load at this moment: other engineers' tests share these cores."""
    one, five, fifteen = os.getloadavg()
    return {
        "loadavg_1m": round(one, 2),
        "loadavg_5m": round(five, 2),
        "loadavg_15m": round(fifteen, 2),
        "cpus": os.cpu_count(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _rss(proc: psutil.Process) -> int:
    try:
        return int(proc.memory_info().rss)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return list(proc.children(recursive=True))
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


@dataclass
class MemoryPeak:
    """Peaks over a sampling window, in MiB.

    `harness` is the largest single harness process (the target applies per run),
    `harnesses` the largest sum over all harnesses at one instant (concurrent runs),
    `children` the largest sum over all their descendants at one instant (app processes,
    and services on the process backend; containers are not descendants).
    """

    harness: float = 0.0
    harnesses: float = 0.0
    children: float = 0.0
    samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "harness_peak_mib": round(self.harness, 1),
            "harnesses_total_peak_mib": round(self.harnesses, 1),
            "children_total_peak_mib": round(self.children, 1),
            "samples": self.samples,
        }


@dataclass
class RssSampler:
    """Samples the RSS of `roots` (harness processes) and all their descendants every 50 ms.

    Roots can be added while sampling (runs started one after another); a root that exited
    simply contributes nothing from then on.
    """

    interval: float = 0.05
    peak: MemoryPeak = field(default_factory=MemoryPeak)
    _roots: list[psutil.Process] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def add(self, pid: int) -> None:
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return
        with self._lock:
            self._roots.append(proc)

    def sample(self) -> None:
        with self._lock:
            roots = list(self._roots)
        per_root = [_rss(r) for r in roots]
        seen: set[int] = {r.pid for r in roots}
        children = 0
        for root in roots:
            for child in _descendants(root):
                if child.pid not in seen:  # a root may be another root's child
                    seen.add(child.pid)
                    children += _rss(child)
        peak = self.peak
        peak.harness = max(peak.harness, max(per_root, default=0) / MIB)
        peak.harnesses = max(peak.harnesses, sum(per_root) / MIB)
        peak.children = max(peak.children, children / MIB)
        peak.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()  # the last state, so a window shorter than one interval still counts


def stat_or_none(values: Sequence[float]) -> Stat | None:
    return Stat.of(values) if values else None
