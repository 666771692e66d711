"""Everything one run knows, handed from phase to phase.

Each phase hands the next a typed, frozen product (`ConfigDone`, `ServicesDone`,
`WorkspaceDone`, `PreflightDone`), kept by type: a phase asks `ctx.need(ServicesDone)` for
what it depends on, and a missing product names the phase that should have made it.
Readers that also run after a partial start (verdict, reports, teardown) use
`ctx.get(...)` or the read-only views (`ctx.environment`, ...), None until produced.
Resources are recorded the moment they exist (`forkserver`, `workers`, `app_record`,
`cleanups`): teardown stops them whichever phase failed. Nothing in here is printed
without the redactor.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from staging.events import EventSink
from staging.redact import Redactor
from staging.result import FailureClass, PhaseResult
from staging.signals import signals_held

if TYPE_CHECKING:
    from staging.app_record import AppRecord
    from staging.capture import CaptureServer
    from staging.config.load import LoadedConfig
    from staging.forkserver import ForkServer
    from staging.gate.shards import Shard
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


class PhaseOrderError(RuntimeError):
    """A phase asked for a product its predecessor never handed on: staging's own bug."""


@dataclass(frozen=True)
class Product:
    """What one phase hands the next. `phase` names the producer, for `need`'s message."""

    phase: ClassVar[str] = "?"


P = TypeVar("P", bound=Product)


@dataclass(frozen=True)
class ConfigDone(Product):
    phase: ClassVar[str] = "config"
    loaded: LoadedConfig
    run_dir: Path

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"


@dataclass(frozen=True)
class ServicesDone(Product):
    phase: ClassVar[str] = "services"
    environment: Environment
    captures: CaptureServer


@dataclass(frozen=True)
class TreeHashed(Product):
    """The tree under test: known before the copy is finished, and recorded in the
    verdict (the gate's key) even when the workspace phase then fails."""

    phase: ClassVar[str] = "workspace"
    tree: TreeInfo


@dataclass(frozen=True)
class WorkspaceDone(Product):
    phase: ClassVar[str] = "workspace"
    workspace: Workspace
    delivery: Delivery
    rendered_env: dict[str, str]  # the settings variables, rendered (before delivery)
    app_env: dict[str, str]  # the hermetic env every app process gets
    origins_dir: Path  # where app processes record their modules' origins


@dataclass(frozen=True)
class PreflightDone(Product):
    phase: ClassVar[str] = "preflight"
    probe: ProbeReport
    provenance: tuple[dict[str, str], ...]


@dataclass
class RunOptions:
    project: Path = Path(".")
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted config keys from the CLI
    keep_on_failure: bool = False
    pipelines: list[str] = field(default_factory=list)  # only these, when given
    json: bool = False
    record_dir: Path | None = None  # save workflow histories of a green run here
    shard: Shard | None = None  # --shard K/N; the config phase sets its plan and `pipelines`


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
    console: EventSink  # where phases report progress; the CLI draws it
    redactor: Redactor
    run_id: str = field(default_factory=new_run_id)
    started_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.monotonic)
    # What each finished phase handed on, by type: `need(ServicesDone)`, `get(ConfigDone)`.
    products: dict[type[Product], Product] = field(default_factory=dict)
    # Resources below are written the moment they exist (not when their phase passes):
    # teardown stops them after a partial start too.
    forkserver: ForkServer | None = None  # the app's interpreter, started ahead
    # The live worker processes (rollout replaces them); `worker` is the one whose death
    # the pipelines phase reports as a crash (chaos clears it while it kills on purpose).
    worker: ManagedProcess | None = None
    workers: list[ManagedProcess] = field(default_factory=list)
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

    def put(self, product: Product) -> None:
        """Hand a phase's product on; a phase that runs twice (a retry) replaces it."""
        self.products[type(product)] = product

    def get(self, kind: type[P]) -> P | None:
        """The product if its phase has handed it on (reports, teardown: partial runs)."""
        found = self.products.get(kind)
        return found if isinstance(found, kind) else None

    def need(self, kind: type[P]) -> P:
        """The product a phase depends on; its absence is staging's own ordering bug."""
        found = self.get(kind)
        if found is None:
            raise PhaseOrderError(
                f"{kind.__name__} is needed but the {kind.phase} phase has not produced it "
                f"(products so far: {', '.join(k.__name__ for k in self.products) or 'none'})"
            )
        return found

    # Read-only views for readers that may run before a phase (verdict, reports, keep):
    # None until the phase that produces the value has passed.
    @property
    def loaded(self) -> LoadedConfig | None:
        done = self.get(ConfigDone)
        return done.loaded if done else None

    @property
    def run_dir(self) -> Path | None:
        done = self.get(ConfigDone)
        return done.run_dir if done else None

    @property
    def environment(self) -> Environment | None:
        done = self.get(ServicesDone)
        return done.environment if done else None

    @property
    def captures(self) -> CaptureServer | None:
        done = self.get(ServicesDone)
        return done.captures if done else None

    @property
    def workspace(self) -> Workspace | None:
        done = self.get(WorkspaceDone)
        return done.workspace if done else None

    @property
    def tree(self) -> TreeInfo | None:
        done = self.get(TreeHashed)
        return done.tree if done else None

    @property
    def delivery(self) -> Delivery | None:
        done = self.get(WorkspaceDone)
        return done.delivery if done else None

    @property
    def probe(self) -> ProbeReport | None:
        done = self.get(PreflightDone)
        return done.probe if done else None

    @property
    def provenance(self) -> list[dict[str, str]]:
        done = self.get(PreflightDone)
        return list(done.provenance) if done else []

    @property
    def logs_dir(self) -> Path:
        return self.need(ConfigDone).logs_dir

    def spawn(self, name: str, command: list[str], role: str, cwd: str = ".") -> ManagedProcess:
        """Start an app process in the workspace with the hermetic env, recorded for sweeps.

        `cwd`: the command's `cwd` key, relative to the app dir (checked by the workspace phase).
        """
        from staging.process import CommandNotStarted, ManagedProcess
        from staging.workspace import resolve_command

        config, workspace = self.need(ConfigDone), self.need(WorkspaceDone)
        # Ctrl-C / SIGTERM wait until the process is recorded: one that started untracked
        # would outlive teardown and every sweep.
        with signals_held():
            try:
                proc = ManagedProcess.start(
                    name,
                    resolve_command(command, config.loaded.python),
                    cwd=workspace.workspace.app / cwd,
                    env=workspace.app_env,
                    log_path=config.logs_dir / f"{name}.log",
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
        config = self.get(ConfigDone)
        total = config.loaded.config.timeout if config else 300.0
        return max(0.0, total - self.elapsed())
