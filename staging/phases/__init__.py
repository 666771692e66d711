"""One module per phase of a run, each `phase(ctx) -> PhaseResult`, in run order.

Phase modules are imported when their phase starts, not up front: the later phases
pull in temporalio and psycopg (about a second), and `staging run` warms them on a
thread while the services start instead of before (see `warm_up`).
"""

from __future__ import annotations

import importlib
import threading

from staging.context import RunContext
from staging.result import PhaseResult
from staging.runner import Phase

_ORDER = [
    ("config", "config"),
    ("services", "services"),
    ("workspace", "workspace"),
    ("preflight", "preflight"),
    ("replay", "replay"),
    ("setup", "setup"),
    ("worker", "worker"),
    ("pipelines", "pipelines"),
    ("checks", "checks"),
]


def _lazy(name: str, module: str) -> Phase:
    def phase(ctx: RunContext) -> PhaseResult:
        function: Phase = getattr(
            importlib.import_module(f"staging.phases.{module}"), f"{name}_phase"
        )
        return function(ctx)

    phase.__name__ = f"{name}_phase"
    return phase


RUN_PHASES: list[tuple[str, Phase]] = [(name, _lazy(name, module)) for name, module in _ORDER]


def warm_up() -> threading.Thread:
    """Import the later phases (and their heavy dependencies) on a background thread."""

    def load() -> None:
        for _, module in _ORDER[2:]:
            try:
                importlib.import_module(f"staging.phases.{module}")
            except Exception:  # the phase itself will raise it, as a result, in order
                return

    thread = threading.Thread(target=load, name="warm-up", daemon=True)
    thread.start()
    return thread
