"""The session's environment: the phases of `staging run` up to the worker, or an attach.

Started, it is a `RunContext` driven through the run's own phases (config, services,
workspace, settings preflight, setup), so the backend, the selection, the delivery and the
migrations are exactly those of `staging run`; the worker phase runs when a test asks for
the worker. Teardown is the run's own, and the services carry the run's ownership records:
a killed session's services are swept by the next run or session. Attached (a Python
check inside `staging run`), it only describes the run's live services.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from staging.pytest_plugin.attach import Attach
from staging.pytest_plugin.databases import EMPTY_TEMPLATE, DatabaseFactory
from staging.services.base import PostgresEndpoint, TemporalEndpoint

if TYPE_CHECKING:
    from staging.capture import CapturedRequest
    from staging.context import RunContext
    from staging.probes import ProbeReport
    from staging.result import PhaseResult

# The phases of `staging run` a session runs up front (replay belongs to the gate).
SESSION_PHASES = ("config", "services", "workspace", "preflight", "setup")


class SessionFailed(Exception):
    """A phase of the session's start did not pass; carries its diagnosis."""

    def __init__(self, result: PhaseResult) -> None:
        self.result = result
        diagnosis = result.diagnosis
        if diagnosis is None:
            text = f"the {result.name} phase did not pass ({result.status.value})"
            self.failure_class = ""
        else:
            evidence = "".join(f"\n  {line}" for line in diagnosis.evidence[:12])
            text = (
                f"staging: the {result.name} phase failed: {diagnosis.failure_class.value}: "
                f"{diagnosis.cause}{evidence}\nHint: {diagnosis.hint}"
            )
            self.failure_class = diagnosis.failure_class.value
        super().__init__(text)

    @property
    def unavailable(self) -> bool:
        """No backend could run the services: a skip (unless required), not a failure."""
        return self.failure_class == "services.unavailable"


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    task_queue: str
    pid: int


@dataclass
class StagingServices:
    """What `staging_services` gives a test: the endpoints and the backend that serves them."""

    postgres: PostgresEndpoint
    temporal: TemporalEndpoint
    backend: str
    run_id: str
    attached: bool
    app_dir: Path | None = None  # the workspace copy of the app (the run's, when attached)
    _ctx: RunContext | None = field(default=None, repr=False)
    _attach: Attach | None = field(default=None, repr=False)
    _workers: list[WorkerInfo] | None = field(default=None, repr=False)
    _databases: DatabaseFactory | None = field(default=None, repr=False)

    @classmethod
    def start(cls, project: Path, backend: str | None) -> StagingServices:
        """Run the session phases; on any failure stop what started, then raise."""
        from staging.context import RunContext, RunOptions, ServicesDone, WorkspaceDone
        from staging.events import NullSink
        from staging.phases import RUN_PHASES
        from staging.runner import run_phase

        redactor = _redactor()
        ctx = RunContext(
            options=RunOptions(
                project=project, overrides={"backend": backend} if backend else {}, json=True
            ),
            console=NullSink(),
            redactor=redactor,
        )
        phases = dict(RUN_PHASES)
        try:
            for name in SESSION_PHASES:
                result = run_phase(ctx, name, phases[name])
                ctx.results.append(result)
                if not result:
                    raise SessionFailed(result)
            env = ctx.need(ServicesDone).environment
            app = ctx.need(WorkspaceDone).workspace.app
            # Now, before any worker connects: a database in use cannot be a template.
            databases = DatabaseFactory.from_app_database(
                env.postgres, f"staging_{ctx.run_id.replace('-', '_')}"
            )
        except BaseException:
            _teardown(ctx)
            raise
        services = cls(env.postgres, env.temporal, env.backend_name, ctx.run_id, False, app, ctx)
        services._databases = databases
        return services

    @classmethod
    def attach(cls, attach: Attach) -> StagingServices:
        workers = [
            WorkerInfo(str(w["name"]), str(w["task_queue"]), int(w["pid"])) for w in attach.workers
        ]
        return cls(
            PostgresEndpoint(**attach.postgres),
            TemporalEndpoint.from_dict(attach.temporal),
            attach.backend,
            attach.run_id,
            True,
            app_dir=Path(attach.app_dir) if attach.app_dir else None,
            _attach=attach,
            _workers=workers,
        )

    def databases(self) -> DatabaseFactory:
        if self._databases is None:
            self._databases = DatabaseFactory(self.postgres, EMPTY_TEMPLATE)
        return self._databases

    def settings_report(self) -> ProbeReport | None:
        from staging.probes import ProbeReport

        if self._ctx is not None:
            return self._ctx.probe
        if self._attach is not None and self._attach.settings:
            return ProbeReport.from_json(self._attach.settings)
        return None

    def workers(self) -> list[WorkerInfo]:
        """The app's workers polling their task queues; started on first use (the worker phase)."""
        if self._workers is not None:
            return self._workers
        from staging.phases import RUN_PHASES
        from staging.runner import run_phase

        ctx = self._ctx
        assert ctx is not None
        result = run_phase(ctx, "worker", dict(RUN_PHASES)["worker"])
        ctx.results.append(result)
        if not result:
            raise SessionFailed(result)
        self._workers = [
            WorkerInfo(str(w["name"]), str(w["task_queue"]), int(w["pid"]))
            for w in result.details.get("workers", [])
        ]
        return self._workers

    def capture_names(self) -> list[str]:
        if self._ctx is not None and self._ctx.captures is not None:
            return list(self._ctx.captures.names)
        return sorted(self._attach.captured_urls) if self._attach is not None else []

    def capture_url(self, name: str) -> str:
        if self._ctx is not None and self._ctx.captures is not None:
            return self._ctx.captures.url(name)
        urls = self._attach.captured_urls if self._attach is not None else {}
        if name not in urls:
            raise KeyError(f"no capture sink named {name!r}; sinks: {', '.join(sorted(urls))}")
        return urls[name]

    def captured_requests(self) -> list[dict[str, Any]]:
        """Every notification the sinks received so far, oldest first."""
        if self._ctx is not None and self._ctx.captures is not None:
            return [_as_dict(r) for r in self._ctx.captures.requests()]
        if self._attach is not None and self._attach.captured_file:
            data: list[dict[str, Any]] = json.loads(Path(self._attach.captured_file).read_text())
            return data
        return []

    def stop(self) -> None:
        try:
            if self._databases is not None:
                self._databases.close()
                self._databases = None
        finally:
            if self._ctx is not None:
                _teardown(self._ctx)
                self._ctx = None


def _as_dict(request: CapturedRequest) -> dict[str, Any]:
    return request.to_dict()


def _teardown(ctx: RunContext) -> None:
    from staging.phases.teardown import teardown
    from staging.result import Status
    from staging.runner import RunOutcome

    teardown(ctx, RunOutcome(Status.PASSED, 0, list(ctx.results), None))


def _redactor() -> Any:
    from staging.db_errors import scrub_dsn_fragments
    from staging.redact import Redactor

    return Redactor(scrubbers=[scrub_dsn_fragments])
