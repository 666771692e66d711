"""Fakes for running one phase alone: an Environment, app processes, Temporal's answers.

A phase reads only the products earlier phases handed on (`ConfigDone`, `ServicesDone`,
`WorkspaceDone`) plus `ctx.spawn`; `fake_run` builds a context holding fakes of those,
and `FakeRun.spawn` starts `FakeProcess`es scripted by command name instead of real ones.
Temporal is faked where a phase asks it something (`FakeTemporal`, patched in by name).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from staging.config.load import LoadedConfig
from staging.config.model import StagingConfig
from staging.context import (
    ConfigDone,
    RunContext,
    RunOptions,
    ServicesDone,
    TreeHashed,
    WorkspaceDone,
)
from staging.events import RecordingSink
from staging.redact import Redactor
from staging.services.base import PostgresEndpoint
from staging.services.temporal_endpoint import TemporalEndpoint
from staging.temporal.failures import WorkflowOutcome
from staging.temporal.watch import StuckActivity
from staging.workspace import TreeInfo

_pids = itertools.count(40_000)


@dataclass
class Script:
    """How a fake process behaves: exits at once with `code`, or runs until stopped."""

    code: int | None = 0  # None: runs until stopped (or until `die()` is called)
    output: str = ""


class FakeProcess:
    """Quacks like `staging.process.ManagedProcess` for the phases that drive one."""

    def __init__(self, name: str, command: list[str], script: Script, logs: Path) -> None:
        self.name, self.command, self.script = name, command, script
        self.pid = next(_pids)
        self.forked = False
        self.log_path = logs / f"{name}.log"
        self._code: int | None = script.code
        self.stops = 0

    def alive(self) -> bool:
        return self._code is None

    @property
    def returncode(self) -> int | None:
        return self._code

    def wait(self, timeout: float | None = None) -> int | None:
        return self._code  # a process that runs on "times out" at once: no real waiting

    def output(self, lines: int = 60) -> str:
        return "\n".join(self.script.output.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> int | None:
        self.stops += 1
        if self._code is None:
            self._code = -15
        return self._code

    def die(self, code: int) -> None:
        """Exit from outside (the OOM killer, a crash) while the phase waits."""
        self._code = code


@dataclass
class FakeService:
    name: str
    up: bool = True

    def alive(self) -> bool:
        return self.up


class FakeEnvironment:
    """The services of a run, none running: endpoints, liveness by service, stop counts."""

    backend_name = "fake"
    backend_reason = "a unit test"

    def __init__(self) -> None:
        self.postgres = PostgresEndpoint("127.0.0.1", 5432, "app", "s3cret-Pw", "app")
        self.temporal = TemporalEndpoint("127.0.0.1", 7233, "default")
        self.endpoints: dict[str, Any] = {"postgres": self.postgres, "temporal": self.temporal}
        self.generic: dict[str, Any] = {}
        self._services = (FakeService("postgres"), FakeService("temporal"))
        self.stopped = 0
        self.saved_logs: list[Path] = []

    @property
    def services(self) -> tuple[FakeService, ...]:
        return self._services

    def service(self, name: str) -> FakeService:
        return next(s for s in self._services if s.name == name)

    def kill(self, name: str) -> None:
        self.service(name).up = False

    def alive(self) -> dict[str, bool]:
        return {s.name: s.alive() for s in self._services}

    def versions(self) -> dict[str, str]:
        return {s.name: "fake" for s in self._services}

    def placeholders(self) -> dict[str, str]:
        from staging.config.render import placeholder_values

        return placeholder_values(self.postgres, self.temporal, {}, services=self.generic)

    def save_logs(self, dest_dir: Path) -> None:
        self.saved_logs.append(dest_dir)

    def detach(self) -> None:
        pass

    def stop(self) -> float:
        self.stopped += 1
        return 0.0


class FakeCaptures:
    """The loopback notification sinks: a count the app "sent" and their JSON."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self.stopped = 0

    def count(self) -> int:
        return len(self.sent)

    def to_json(self) -> list[dict[str, Any]]:
        return list(self.sent)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:1/{name}"

    def hosts(self) -> set[str]:
        return {"127.0.0.1"}

    def stop(self) -> None:
        self.stopped += 1


@dataclass
class FakeWorkspace:
    root: Path
    files: list[str] = field(default_factory=list)
    removed: int = 0

    @property
    def app(self) -> Path:
        return self.root / "app"

    def remove(self) -> None:
        self.removed += 1


@dataclass
class FakeDelivery:
    channel: str = "environment variables"
    env_vars: dict[str, str] = field(default_factory=dict)
    mode: str = "environ"
    strategy: Any = None  # the preflight then derives it from `mode`


@dataclass
class FakeRun(RunContext):
    """A run context whose app processes are `FakeProcess`es, scripted by process name
    prefix ("setup-migrate", "worker", "pipeline-load"); unscripted ones exit 0."""

    scripts: dict[str, Script] = field(default_factory=dict)
    spawned: list[FakeProcess] = field(default_factory=list)
    reaped: list[FakeProcess] = field(default_factory=list)

    def spawn(self, name: str, command: list[str], role: str, cwd: str = ".") -> Any:
        script = next(
            (s for prefix, s in self.scripts.items() if name.startswith(prefix)), Script()
        )
        proc = FakeProcess(name, command, script, self.logs_dir)
        self.spawned.append(proc)
        return proc

    def reap(self, proc: Any) -> None:
        self.reaped.append(proc)

    @property
    def sink(self) -> RecordingSink:
        return cast(RecordingSink, self.console)

    @property
    def env(self) -> FakeEnvironment:
        return cast(FakeEnvironment, self.need(ServicesDone).environment)

    @property
    def sent(self) -> list[dict[str, Any]]:
        return cast(FakeCaptures, self.need(ServicesDone).captures).sent


def loaded_config(app_dir: Path, table: dict[str, Any]) -> LoadedConfig:
    config = StagingConfig.model_validate(table)
    return LoadedConfig(
        config=config,
        pyproject=app_dir / "pyproject.toml",
        project_dir=app_dir,
        app_dir=app_dir,
        python="python",
    )


WORKER = {"command": ["python", "-m", "app.worker"], "task_queue": "q"}


def fake_run(
    tmp_path: Path,
    table: dict[str, Any] | None = None,
    *,
    upto: str = "workspace",
    scripts: dict[str, Script] | None = None,
    pipelines: list[str] | None = None,
) -> FakeRun:
    """A context as the run has it when the phase after `upto` starts."""
    redactor = Redactor()
    ctx = FakeRun(
        options=RunOptions(project=tmp_path, pipelines=pipelines or []),
        console=RecordingSink(),
        redactor=redactor,
        run_id="r-test",
        scripts=scripts or {},
    )
    loaded = loaded_config(tmp_path, table or {"worker": WORKER})
    done = ConfigDone(loaded, tmp_path / "runs" / ctx.run_id)
    done.logs_dir.mkdir(parents=True)
    ctx.put(done)
    if upto == "config":
        return ctx
    env = FakeEnvironment()
    redactor.add(env.postgres.password)
    ctx.put(ServicesDone(cast(Any, env), cast(Any, FakeCaptures())))
    if upto == "services":
        return ctx
    workspace = FakeWorkspace(tmp_path / "workspace")
    workspace.app.mkdir(parents=True)
    origins = workspace.root / "origins"
    origins.mkdir()
    ctx.put(TreeHashed(TreeInfo("a" * 40, None, False, 3)))
    ctx.put(WorkspaceDone(cast(Any, workspace), cast(Any, FakeDelivery()), {}, {}, origins))
    return ctx


class FakeTemporal:
    """Temporal as the pipelines and worker phases see it, patched in by name.

    `outcomes`: the workflows a listing returns; `stuck`: what the stuck-activity scan
    finds (None: nothing); `pollers`: whether each worker's queue shows a poller.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.outcomes: list[WorkflowOutcome] = []
        self.stuck: StuckActivity | None = None
        self.pending: list[str] = []
        self.scans = 0
        self.on_scan: Callable[[], None] | None = None
        import staging.phases.pipelines as pipelines

        async def client(*args: object, **kwargs: object) -> object:
            return object()

        async def outcomes(*args: object, **kwargs: object) -> list[WorkflowOutcome]:
            return list(self.outcomes)

        async def find_stuck(*args: object, **kwargs: object) -> StuckActivity | None:
            self.scans += 1
            if self.on_scan is not None:
                self.on_scan()
            return self.stuck

        async def pending(*args: object, **kwargs: object) -> list[str]:
            return list(self.pending)

        monkeypatch.setattr(pipelines, "temporal_client", client)
        monkeypatch.setattr(pipelines, "workflow_outcomes", outcomes)
        monkeypatch.setattr(pipelines, "find_stuck_activity", find_stuck)
        monkeypatch.setattr(pipelines, "pending_activities", pending)
        # No real waiting between the phase's looks at a fake.
        monkeypatch.setattr(pipelines, "_POLL", 0.001)
        monkeypatch.setattr(pipelines, "_STUCK_EVERY", 0.001)
        monkeypatch.setattr(pipelines, "_GUARD_EVERY", 0.001)


def outcome(workflow_id: str, status: str = "completed", **kwargs: Any) -> WorkflowOutcome:
    return WorkflowOutcome(workflow_id, "run-1", "Load", "q", status, **kwargs)
