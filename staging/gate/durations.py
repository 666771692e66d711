"""The pipeline durations a shard plan is balanced by, and where they came from.

First found wins:

1. `staging-durations.json` in the app dir, committed (`{"pipeline": seconds}`): the
   same on every machine of a CI matrix, so the plan is too. Recommended for CI, where
   each shard starts on a fresh machine with no history.
2. The newest recorded duration of each pipeline in this machine's `.staging/runs/`,
   from runs that were not shards themselves: a shard run never changes the plan, so
   `--shard 1/2` then `--shard 2/2` on one machine cut the same plan.
3. Nothing recorded: every pipeline weighs the same.

Two machines that balance by different durations may cut different plans; the gate
then names the pipelines no shard ran (it never opens on a gap) and says the plans differ.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from staging.errors import ConfigError
from staging.gate.shards import Shard, resolve
from staging.gate.store import VerdictStore

DURATIONS_FILE = "staging-durations.json"
_HISTORY = 50  # newest runs looked at


def shard_durations(app_dir: Path, configured: Sequence[str]) -> tuple[dict[str, float], str]:
    """Durations by pipeline name and a one-line basis for the verdict."""
    path = app_dir / DURATIONS_FILE
    if path.is_file():
        return read_durations_file(path), f"durations from {DURATIONS_FILE}"
    recorded, run_id = recorded_durations(VerdictStore(app_dir), configured)
    if recorded:
        return recorded, f"durations recorded by run {run_id} and earlier (.staging/runs)"
    return {}, "no durations recorded: every pipeline weighs the same"


def read_durations_file(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path} is not readable JSON",
            expected='{"pipeline name": seconds, ...}',
            observed=f"{type(exc).__name__}: {exc}",
            hint=f"fix or delete {path.name}; without it shards are balanced by the "
            "durations this machine recorded, or equally",
        ) from exc
    bad = (
        [repr(k) for k, v in data.items() if not _seconds(v)]
        if isinstance(data, dict)
        else [type(data).__name__]
    )
    if bad:
        raise ConfigError(
            f"{path} does not map pipeline names to seconds",
            expected='{"pipeline name": seconds, ...} with seconds a finite number >= 0',
            observed=", ".join(bad[:5]),
            hint="write each [[tool.staging.pipelines]] name with its last duration, e.g. "
            '{"everflow": 42.5}',
        )
    assert isinstance(data, dict)
    return {str(k): float(v) for k, v in data.items()}


def _seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def recorded_durations(
    store: VerdictStore, configured: Sequence[str]
) -> tuple[dict[str, float], str | None]:
    """Each configured pipeline's newest passed duration from non-shard runs, and the
    newest run that gave one."""
    wanted = set(configured)
    found: dict[str, float] = {}
    newest: str | None = None
    for run in store.runs(limit=_HISTORY):
        verdict = run.verdict
        if not verdict or verdict.get("shard"):
            continue
        pipelines = verdict.get("pipelines")
        for entry in pipelines if isinstance(pipelines, list) else []:
            if not isinstance(entry, dict) or entry.get("status") != "passed":
                continue
            name, duration = entry.get("name"), entry.get("duration")
            if name in wanted and name not in found and _seconds(duration):
                found[str(name)] = float(duration)  # type: ignore[arg-type]
                newest = newest or run.run_id
        if len(found) == len(wanted):
            break
    return found, newest


def resolve_shard(
    shard: Shard,
    app_dir: Path,
    configured: Sequence[str],
    *,
    requested: Sequence[str] = (),
    pyproject: Path | str = "pyproject.toml",
) -> Shard:
    """`shard` with its plan, balanced by the durations found for this app."""
    durations, basis = shard_durations(app_dir, configured)
    return resolve(shard, configured, durations, basis, requested=requested, pyproject=pyproject)


def shard_note(shard: Shard) -> str:
    """The verdict's note: which pipelines this shard ran, and how the plan was balanced."""
    total = sum(len(s) for s in shard.plan.shards) if shard.plan else 0
    basis = shard.plan.basis if shard.plan else "no plan"
    return (
        f"shard {shard}: {', '.join(shard.pipelines)} ({len(shard.pipelines)} of {total} "
        f"pipelines; {basis})"
    )
