"""Everything one run knows, handed from phase to phase.

Phases read what earlier phases put here and add their own part; teardown reads it to
stop what was started. Nothing in here is printed without the redactor.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from staging.console import RunConsole
from staging.redact import Redactor
from staging.result import FailureClass, PhaseResult
from staging.signals import signals_held

if TYPE_CHECKING:
    from staging.app_record import AppRecord
    from staging.capture import CaptureServer
    from staging.config.load import LoadedConfig
    from staging.forkserver import ForkServer
    from staging.preflight import ProbeReport
    from staging.process import ManagedProcess
    from staging.services.environment import Environment
    from staging.workspace import Delivery, TreeInfo, Workspace


# The class a command that cannot even start gets, by its role in the run.
_NOT_STARTED = {
    "setup": FailureClass.SETUP_FAILED,
    "worker": FailureClass.WORKER_CRASHED,
    "trigger": FailureClass.PIPELINE_FAILED,
}


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class RunOptions:
    project: Path = Path(".")
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted config keys from the CLI
    keep_on_failure: bool = False
    pipelines: list[str] = field(default_factory=list)  # only these, when given
    json: bool = False
    record_dir: Path | None = None  # save workflow histories of a green run here


@dataclass
class PipelineRecord:
    name: str
    status: str = "pending"
    duration: float = 0.0
    workflows: list[dict[str, Any]] = field(default_factory=list)
    notifications: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None


@dataclass
class RunContext:
    options: RunOptions
    console: RunConsole
    redactor: Redactor
    run_id: str = field(default_factory=new_run_id)
    started_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.monotonic)
    loaded: LoadedConfig | None = None
    run_dir: Path | None = None
    environment: Environment | None = None
    captures: CaptureServer | None = None
    workspace: Workspace | None = None
    delivery: Delivery | None = None
    rendered_env: dict[str, str] = field(default_factory=dict)
    app_env: dict[str, str] = field(default_factory=dict)  # the hermetic env app processes get
    tree: TreeInfo | None = None
    probe: ProbeReport | None = None
    provenance: list[dict[str, str]] = field(default_factory=list)
    forkserver: ForkServer | None = None  # the app's interpreter, started ahead
    worker: ManagedProcess | None = None  # the first of `workers`
    workers: list[ManagedProcess] = field(default_factory=list)
    origins_dir: Path | None = None  # where app processes record their modules' origins
    app_record: AppRecord | None = None
    pipelines: list[PipelineRecord] = field(default_factory=list)
    results: list[PhaseResult] = field(default_factory=list)
    interrupted: str | None = None  # "SIGINT" / "SIGTERM"
    kept: bool = False  # --keep-on-failure left the environment running
    notes: list[str] = field(default_factory=list)
    # Work started ahead of its phase (collected by that phase) and how to stop it.
    background: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def logs_dir(self) -> Path:
        assert self.run_dir is not None, "the config phase sets run_dir"
        return self.run_dir / "logs"

    def spawn(self, name: str, command: list[str], role: str, cwd: str = ".") -> ManagedProcess:
        """Start an app process in the workspace with the hermetic env, recorded for sweeps.

        `cwd`: the command's `cwd` key, relative to the app dir (checked by the workspace phase).
        """
        from staging.process import CommandNotStarted, ManagedProcess
        from staging.workspace import resolve_command

        assert self.loaded is not None and self.workspace is not None
        # Ctrl-C / SIGTERM wait until the process is recorded: one that started untracked
        # would outlive teardown and every sweep.
        with signals_held():
            try:
                proc = ManagedProcess.start(
                    name,
                    resolve_command(command, self.loaded.python),
                    cwd=self.workspace.app / cwd,
                    env=self.app_env,
                    log_path=self.logs_dir / f"{name}.log",
                    redactor=self.redactor,
                    forkserver=self.forkserver,
                )
            except CommandNotStarted as exc:
                raise exc.as_class(_NOT_STARTED.get(role, exc.failure_class)) from exc.error
            if self.app_record is not None:
                self.app_record.track(proc, role)
        return proc

    def reap(self, proc: ManagedProcess) -> None:
        """Forget a process that has exited (or was stopped)."""
        if self.app_record is not None:
            self.app_record.untrack(proc)

    def remaining(self) -> float:
        """Seconds left of the whole-run `timeout`."""
        total = self.loaded.config.timeout if self.loaded else 300.0
        return max(0.0, total - self.elapsed())
