"""The verdict: one JSON document per run, everything redacted, written before teardown."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from staging import __version__
from staging.context import RunContext
from staging.runner import RunOutcome

SCHEMA = 1


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
        "tree": (
            {"hash": ctx.tree.hash, "commit": ctx.tree.commit, "dirty": ctx.tree.dirty}
            if ctx.tree
            else None
        ),
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
