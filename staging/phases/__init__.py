"""One module per phase of a run, each `phase(ctx) -> PhaseResult`, in run order.

Phase modules are imported when their phase starts, not up front: the later phases
pull in temporalio and psycopg (about a second), and `staging run` warms them on a
thread while the services start (see `warm_up`).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence

from staging.context import ConfigDone, RunContext
from staging.imports import import_module
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
        function: Phase = getattr(import_module(f"staging.phases.{module}"), f"{name}_phase")
        return function(ctx)

    phase.__name__ = f"{name}_phase"
    return phase


def _warm_up_then_services(ctx: RunContext) -> PhaseResult:
    """Warm up, and hash and copy the app, while the services start.

    Not before: config and warm-up would share one GIL. Temporal's readiness check uses
    the SDK once the warm-up has imported it and the `temporal` CLI until then, so a fast
    service (the process backend's, ready in ~0.6 s) never waits for the import and a slow
    one (a container) costs no extra CPU. Where Docker may be used, the docker SDK and
    testcontainers come first: choosing the backend needs them at once, and sharing the
    GIL with temporalio's import doubled that (0.6 -> 1.0-1.5 s measured).
    """
    # What choosing the backend imports first: docker's SDK where docker may be used; the
    # attach backend (psycopg) for attach, which needs no service start to hide it behind.
    backend = ctx.need(ConfigDone).loaded.config.backend
    first = {"auto": "staging.services.docker_backend", "docker": "staging.services.docker_backend"}
    first["attach"] = "staging.services.attach.services"
    warm_up(first=[first[backend]] if backend in first else [])
    from staging.phases.workspace import prefetch_workspace

    prefetch_workspace(ctx)
    return _lazy("services", "services")(ctx)


RUN_PHASES: list[tuple[str, Phase]] = [
    (name, _warm_up_then_services if name == "services" else _lazy(name, module))
    for name, module in _ORDER
]


def run_phases(ctx: RunContext) -> Iterator[tuple[str, Phase]]:
    """`RUN_PHASES`, with the interrupted pass and the rollout rehearsal after the pipelines
    when the config enables them (issue 15).

    Decided as the run reaches it (the config is loaded by then), so a run without
    `--rollout` shows and reports exactly the phases it always did.
    """
    for name, phase in RUN_PHASES:
        yield name, phase
        cfg = ctx.loaded.config if ctx.loaded is not None else None
        if name != "pipelines" or cfg is None:
            continue
        if cfg.chaos or any(w.interrupt for w in cfg.workers):
            yield "interrupt", _interrupt
        if cfg.rollout.enabled:
            yield "rollout", _lazy("rollout", "rollout")


def _interrupt(ctx: RunContext) -> PhaseResult:
    from staging.rollout.chaos import interrupt_phase

    return interrupt_phase(ctx)


def warm_up(first: Sequence[str] = ()) -> threading.Thread:
    """Import the later phases (and their heavy dependencies) on a background thread.

    The import is CPU-bound Python; the main thread meanwhile copies files and waits on
    pipes, giving up the GIL at every system call and waiting a whole switch interval
    (5 ms by default) to get it back. A 1 ms interval keeps that convoy from stretching
    the workspace phase (about 0.6 s, measured) while costing the import next to nothing.
    """
    sys.setswitchinterval(0.001)

    def load() -> None:
        for module in [*first, *(f"staging.phases.{m}" for _, m in _ORDER[2:])]:
            try:
                import_module(module)
            except Exception:  # whoever needs it will raise it, as a result, in order
                return

    thread = threading.Thread(target=load, name="warm-up", daemon=True)
    thread.start()
    return thread
