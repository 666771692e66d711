"""The pre-deploy gate: open only when a passing verdict exists for exactly this code.

- `store`: the verdict store under `.staging/` (verdicts by tree hash, last green, runs)
- `signing`: HMAC-SHA256 over a canonical JSON of a verdict, keyed by `STAGING_GATE_KEY`
- `decide`: the decision (open, or closed with the reason) for one tree
- `coverage`: what a run covered (pipelines configured and run, replay, checks)
- `shards` / `durations`: `staging run --shard K/N`, a share of the pipelines balanced by
  their durations; `union`: the decision over a tree's shard verdicts together
"""

from __future__ import annotations

from staging.gate.coverage import Coverage
from staging.gate.decide import decide
from staging.gate.decision import GateDecision, GateState, describe_tree
from staging.gate.shards import Shard, ShardInfo, parse_shard
from staging.gate.signing import KEY_ENV, SignatureState, gate_key, sign, verify
from staging.gate.store import (
    RunSummary,
    StoreError,
    VerdictStore,
    app_dir_of,
    gate_target,
    is_conclusive,
)

__all__ = [
    "KEY_ENV",
    "Coverage",
    "GateDecision",
    "GateState",
    "RunSummary",
    "Shard",
    "ShardInfo",
    "SignatureState",
    "StoreError",
    "VerdictStore",
    "app_dir_of",
    "decide",
    "describe_tree",
    "gate_key",
    "gate_target",
    "is_conclusive",
    "parse_shard",
    "sign",
    "verify",
]
