"""Sharded runs: `staging run --shard K/N` runs a deterministic subset of the pipelines.

The plan splits the configured pipelines into N shards balanced by their durations
(longest first, each to the least loaded shard; ties by name, then by shard number), so
every pipeline is in exactly one shard for the same names, durations and N, whatever
the machine. Each shard's verdict records the whole plan, which lets `staging gate` name
the shards and pipelines still missing for a tree (`staging.gate.union`).

The durations come from `staging.gate.durations`; this module is pure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from staging.errors import ConfigError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
# Every pipeline weighs something, so N <= pipelines leaves no shard empty.
_MIN_WEIGHT = 0.001
MAX_SHARDS = 256


@dataclass(frozen=True)
class ShardPlan:
    shards: tuple[tuple[str, ...], ...]  # pipeline names per shard, in config order
    basis: str  # where the durations came from, for the verdict and the console

    @property
    def count(self) -> int:
        return len(self.shards)

    @property
    def fingerprint(self) -> str:
        """Equal for two shards exactly when they were cut from the same plan."""
        text = json.dumps(self.shards, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as on the command line
    count: int
    plan: ShardPlan | None = None  # set once the config is loaded (`resolve`)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def pipelines(self) -> tuple[str, ...]:
        return self.plan.shards[self.index - 1] if self.plan is not None else ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "pipelines": list(self.pipelines),
            "plan": [list(s) for s in self.plan.shards] if self.plan else None,
            "fingerprint": self.plan.fingerprint if self.plan else None,
            "basis": self.plan.basis if self.plan else None,
        }


def parse_shard(text: str) -> Shard:
    """`K/N` with 1 <= K <= N; a ValueError says what was expected and how to fix it."""
    match = _SPEC.match(text)
    if match is None:
        raise ValueError(
            f"expected K/N (this shard's number and the number of shards, e.g. 1/4), "
            f"got {text!r}. Hint: pass --shard ${{{{ matrix.shard }}}}/N in a CI matrix "
            "whose shard values are 1..N"
        )
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(
            f"expected between 1 and {MAX_SHARDS} shards, got N={count} in {text!r}. "
            "Hint: N is the number of shards the pipelines are split into"
        )
    if not 1 <= index <= count:
        raise ValueError(
            f"expected 1 <= K <= N, got K={index} with N={count} in {text!r}. "
            f"Hint: shards are numbered from 1 to N; the last one is {count}/{count}"
        )
    return Shard(index, count)


def plan_shards(
    names: Sequence[str], durations: Mapping[str, float], count: int
) -> tuple[tuple[str, ...], ...]:
    """`names` split into `count` shards balanced by `durations` (longest first, LPT)."""
    weights = {n: max(_MIN_WEIGHT, float(durations.get(n, 0.0))) for n in names}
    loads = [0.0] * count
    members: list[set[str]] = [set() for _ in range(count)]
    for name in sorted(set(names), key=lambda n: (-weights[n], n)):
        lightest = min(range(count), key=lambda i: (loads[i], i))
        loads[lightest] += weights[name]
        members[lightest].add(name)
    return tuple(tuple(n for n in names if n in shard) for shard in members)


def resolve(
    shard: Shard,
    configured: Sequence[str],
    durations: Mapping[str, float],
    basis: str,
    *,
    requested: Sequence[str] = (),
    pyproject: Path | str = "pyproject.toml",
) -> Shard:
    """`shard` with its plan over the configured pipelines; a ConfigError when it cannot run."""
    if requested:
        raise ConfigError(
            f"--shard {shard} and --pipeline {requested[0]} cannot be combined",
            expected="either --shard K/N (a share of every pipeline) or --pipeline NAME",
            observed=f"--shard {shard} --pipeline {' --pipeline '.join(requested)}",
            hint="drop --pipeline: the shards of one tree together run every pipeline",
        )
    if len(configured) < shard.count:
        raise ConfigError(
            f"--shard {shard}: {len(configured)} pipeline(s) cannot fill {shard.count} shards",
            expected=f"at most {len(configured)} shards (one pipeline each at least)",
            observed=f"[[tool.staging.pipelines]] in {pyproject}: "
            + (", ".join(configured) or "(none)"),
            hint=f"use N <= {max(1, len(configured))} in the CI matrix; an empty shard "
            "would start services to prove nothing",
        )
    filled = [n for n in durations if n in configured]
    # A pipeline with no duration yet weighs the mean of the known ones, not nothing.
    mean = sum(durations[n] for n in filled) / len(filled) if filled else 1.0
    weights = {n: durations.get(n, mean) for n in configured}
    plan = ShardPlan(plan_shards(list(configured), weights, shard.count), basis)
    return replace(shard, plan=plan)


@dataclass(frozen=True)
class ShardInfo:
    """A verdict's `shard` record, as the gate reads it (never trusted beyond its types)."""

    index: int
    count: int
    pipelines: tuple[str, ...]
    plan: tuple[tuple[str, ...], ...]
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def from_verdict(cls, verdict: Mapping[str, Any]) -> ShardInfo | None:
        data = verdict.get("shard")
        if not isinstance(data, dict):
            return None
        index, count = data.get("index"), data.get("count")
        if not isinstance(index, int) or not isinstance(count, int):
            return None
        if not 1 <= index <= count <= MAX_SHARDS:
            return None
        pipelines = _names(data.get("pipelines")) or ()
        raw_plan = data.get("plan")
        plan: tuple[tuple[str, ...], ...] = ()
        if isinstance(raw_plan, list) and len(raw_plan) == count:
            shards = [_names(s) for s in raw_plan]
            plan = tuple(s for s in shards if s is not None)
            plan = plan if len(plan) == count else ()
        return cls(index, count, pipelines, plan, str(data.get("fingerprint") or ""))

    @property
    def file_name(self) -> str:
        return f"{self.index}-of-{self.count}.json"


def _names(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def shard_argument(text: str) -> Shard:
    """`--shard K/N` for argparse, whose usage error then carries the message and hint."""
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
