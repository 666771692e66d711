"""The verdict: one JSON document per run, everything redacted, written before teardown."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from staging import __version__
from staging.context import RunContext
from staging.gate.coverage import Coverage
from staging.runner import RunOutcome

# 2: `coverage` (what the run covered) and `tree.excluded_tracked`; the gate refuses to
# open on a verdict without coverage, since it cannot tell a partial run from a full one.
SCHEMA = 2


def build_verdict(ctx: RunContext, outcome: RunOutcome) -> dict[str, Any]:
    env = ctx.environment
    phases = [r.to_dict() for r in ctx.results]
    verdict: dict[str, Any] = {
        "schema": SCHEMA,
        "staging_version": __version__,
        "run_id": ctx.run_id,
        "status": outcome.status.value,
        "exit_code": outcome.exit_code,
        "started_at": ctx.started_wall.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "duration": round(ctx.elapsed(), 3),
        "project": str(ctx.loaded.pyproject) if ctx.loaded else str(ctx.options.project),
        "app_dir": str(ctx.loaded.app_dir) if ctx.loaded else None,
        "run_dir": str(ctx.run_dir) if ctx.run_dir else None,
        "backend": env.backend_name if env else None,
        "backend_reason": env.backend_reason if env else None,
        "versions": env.versions() if env else {},
        "tree": _tree(ctx),
        "coverage": coverage(ctx).to_dict(),
        # --shard K/N: this run's share and the whole plan, for `staging gate` (gate.union)
        "shard": ctx.options.shard.to_dict() if ctx.options.shard else None,
        "phases": phases,
        "pipelines": [
            {
                "name": p.name,
                "status": p.status,
                "duration": round(p.duration, 3),
                "exit_code": p.exit_code,
                "notifications": p.notifications,
                "workflows": p.workflows,
                "checks": p.checks,
            }
            for p in ctx.pipelines
        ],
        "settings": {
            "class": ctx.loaded.config.settings.class_ if ctx.loaded else None,
            "delivery": ctx.delivery.channel if ctx.delivery else None,
            "model_config": jsonable(ctx.probe.model_config) if ctx.probe else None,
            "provenance": ctx.provenance,
        },
        "notifications": ctx.captures.to_json() if ctx.captures else [],
        "diagnosis": outcome.diagnosis.to_dict() if outcome.diagnosis else None,
        "notes": list(ctx.notes),
    }
    redacted: dict[str, Any] = ctx.redactor.value(jsonable(verdict))
    return redacted


def coverage(ctx: RunContext) -> Coverage:
    configured = [p.name for p in ctx.loaded.config.pipelines] if ctx.loaded else []
    return Coverage.of_run(
        configured,
        [p.name for p in ctx.pipelines],
        {r.name: r.status.value for r in ctx.results},
        requested=ctx.options.pipelines,
    )


def _tree(ctx: RunContext) -> dict[str, Any] | None:
    if ctx.tree is None:
        return None
    return {
        "hash": ctx.tree.hash,
        "commit": ctx.tree.commit,
        "dirty": ctx.tree.dirty,
        # Tracked files left out of the hash and the copy (the delivered settings path):
        # named, so a deploy that ships one of them is not a surprise.
        "excluded_tracked": list(ctx.tree.excluded_tracked),
    }


def jsonable(value: Any) -> Any:
    """Plain JSON types from dataclasses, enums, paths and datetimes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path | datetime):
        return str(value)
    return value
