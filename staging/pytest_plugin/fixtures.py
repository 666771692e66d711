"""The plugin's fixtures. Nothing starts until a test asks (or `pytest --staging`).

Under pytest-xdist every worker process is its own pytest session, so each gets its own
services (a process-backend environment starts in about a second): a worker's tests share
nothing with another worker's (databases, task queues, the app's worker, the captured
notifications), and a killed xdist worker leaves services that carry its own pid in their
ownership records, so the next session's sweep removes them. One shared environment would
need cross-process reference counting to know when to stop it, and one killed worker would
take every other worker's services with it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from staging.pytest_plugin.attach import Attach
from staging.pytest_plugin.options import PluginOptions
from staging.pytest_plugin.run import Verdict, run_staging
from staging.pytest_plugin.services import SessionFailed, StagingServices, WorkerInfo

if TYPE_CHECKING:
    from temporalio.client import Client

    from staging.probes import FieldReport, ProbeReport


def _attach() -> Attach | None:
    return Attach.from_env()


@pytest.fixture(scope="session")
def staging_services(request: pytest.FixtureRequest) -> Iterator[StagingServices]:
    """Postgres + Temporal from the same backends and selection as `staging run`."""
    attach = _attach()
    options = PluginOptions.of(request.config)
    try:
        services = (
            StagingServices.attach(attach)
            if attach is not None
            else StagingServices.start(options.project, options.backend)
        )
    except SessionFailed as exc:
        if exc.unavailable and not options.require:
            pytest.skip(f"{exc} (--staging-require makes this a failure)")
        pytest.fail(str(exc), pytrace=False)
    try:
        yield services
    finally:
        services.stop()


@pytest.fixture(scope="session", autouse=True)
def _staging_eager(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--staging", default=False):
        request.getfixturevalue("staging_services")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("staging_check") is not None and _attach() is None:
        pytest.skip(
            "a staging check runs in the checks phase of `staging run` (the `tests` key of "
            "[tool.staging]), against that run's live environment"
        )


@pytest.fixture
def postgres_url(
    staging_services: StagingServices, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh database for this test, cloned from the migrated app database; dropped after."""
    factory = staging_services.databases()
    endpoint = factory.create(request.node.name)
    try:
        yield endpoint.url
    finally:
        factory.drop(endpoint.database)


@pytest.fixture
def staging_task_queue(request: pytest.FixtureRequest) -> str:
    """A task queue no other test (nor xdist worker) uses."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"test-{name}-{secrets.token_hex(4)}"


@pytest.fixture
def temporal_client(staging_services: StagingServices) -> Client:
    """A client of the session's Temporal; isolate a test's work with `staging_task_queue`."""
    import asyncio

    from staging.services.connect import temporal_client as connect

    return asyncio.run(connect(staging_services.temporal))


@dataclass(frozen=True)
class AppSettings:
    """The app's Settings as the probe saw them in the workspace: values (secrets masked)."""

    report: ProbeReport

    @property
    def class_name(self) -> str:
        return self.report.settings_class

    def field(self, name: str) -> FieldReport:
        found = self.report.field(name)
        if found is None:
            known = ", ".join(f.name for f in self.report.fields)
            raise KeyError(f"{self.class_name} has no field {name!r} (fields: {known})")
        return found

    def __getitem__(self, name: str) -> str | None:
        return self.field(name).value

    def source(self, name: str) -> str:
        return self.field(name).source


@pytest.fixture(scope="session")
def staging_settings(staging_services: StagingServices) -> AppSettings:
    """The app's Settings class instantiated through the configured delivery, in the workspace."""
    report = staging_services.settings_report()
    if report is None:
        pytest.skip("no [tool.staging.settings] class is configured")
    return AppSettings(report)


@dataclass
class Captured:
    """The notification sinks; only what arrived during this test (all of a run when attached)."""

    _services: StagingServices
    _since: int = 0
    names: list[str] = field(default_factory=list)

    def requests(self, name: str | None = None) -> list[dict[str, Any]]:
        got = self._services.captured_requests()[self._since :]
        return [r for r in got if name is None or r.get("name") == name]

    def count(self, name: str | None = None) -> int:
        return len(self.requests(name))

    def url(self, name: str) -> str:
        return self._services.capture_url(name)


@pytest.fixture
def captured(staging_services: StagingServices) -> Captured:
    since = 0 if staging_services.attached else len(staging_services.captured_requests())
    return Captured(staging_services, since, staging_services.capture_names())


@dataclass(frozen=True)
class Workers:
    """The app's workers, polling; `task_queue`/`name`/`pid` are the first one's."""

    all: tuple[WorkerInfo, ...]

    @property
    def task_queue(self) -> str:
        return self.all[0].task_queue

    @property
    def name(self) -> str:
        return self.all[0].name

    @property
    def pid(self) -> int:
        return self.all[0].pid


@pytest.fixture(scope="session")
def staging_worker(staging_services: StagingServices) -> Workers:
    """The app's real worker command(s), against the session's services, ready by pollers."""
    try:
        return Workers(tuple(staging_services.workers()))
    except SessionFailed as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def staging_run(request: pytest.FixtureRequest) -> Callable[..., Verdict]:
    """A function running the whole `staging run` of the app and returning its `Verdict`."""
    if _attach() is not None:
        pytest.skip("staging_run cannot run inside a staging run's checks phase")
    options = PluginOptions.of(request.config)

    def run(pipelines: Sequence[str] = (), backend: str | None = None) -> Verdict:
        verdict = run_staging(
            options.project, backend=backend or options.backend, pipelines=pipelines
        )
        if verdict.failure_class == "services.unavailable" and not options.require:
            pytest.skip(f"staging run: {verdict.cause} (--staging-require makes this a failure)")
        return verdict

    return run
