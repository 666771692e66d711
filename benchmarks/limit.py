"""The physical limit: what the same work costs with nothing around it, on this machine.

limit = the slower service started alone to ready (the services layer, one service at a
time) + the app's worker started alone to its first poller + the pipeline's trigger alone
against that ready worker. Nothing staging adds (config, workspace copy, settings preflight,
migrations, checks, verdict, teardown) is in it, so staging / limit is the overhead ratio.

The services-only figures of `benchmarks/services_bench.py` (issue 2: both services ready
in parallel vs the slower alone, teardown) come from its own functions, in the same loop.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import services_bench
from benchmarks.app import App, stop, worker_to_polling
from benchmarks.measure import Stat
from staging.capture import CaptureServer
from staging.services.base import Backend, PostgresService, ServiceSpec, TemporalService
from staging.services.environment import Environment
from staging.services.process_backend import ProcessBackend
from staging.services.select import choose_backend
from staging.services.state import default_base_dir


class AppSpecBackend:
    """A backend whose services get the example app's database, user and images.

    `services_bench` builds specs with the contract's defaults; wrapping the backend (not
    patching the bench) gives its measurements the template and images a real run uses.
    """

    def __init__(self, inner: Backend, database: str, user: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.database, self.user = database, user

    def _spec(self, spec: ServiceSpec) -> ServiceSpec:
        return dataclasses.replace(
            spec,
            database=self.database,
            user=self.user,
            postgres_image=os.environ.get("STAGING_POSTGRES_IMAGE", spec.postgres_image),
            temporal_image=os.environ.get("STAGING_TEMPORAL_IMAGE", spec.temporal_image),
        )

    def postgres(self, spec: ServiceSpec, password: str) -> PostgresService:
        return self.inner.postgres(self._spec(spec), password)

    def temporal(self, spec: ServiceSpec) -> TemporalService:
        return self.inner.temporal(self._spec(spec))

    def sweep(self, *, include_detached: bool = False) -> list[str]:
        return self.inner.sweep(include_detached=include_detached)

    def stop_run(self, run_id: str) -> list[str]:
        return self.inner.stop_run(run_id)

    def detach(self, run_id: str) -> None:
        self.inner.detach(run_id)


def bench_backend(name: str, app: App) -> AppSpecBackend:
    pg = app.loaded.config.postgres
    return AppSpecBackend(choose_backend(name)[0], pg.database, pg.user)


@contextmanager
def app_environment(backend: Backend, app: App) -> Iterator[tuple[Environment, CaptureServer]]:
    """Services up, the app's `.env` written, schema migrated; everything stopped after."""
    spec = ServiceSpec(run_id=f"bench-{uuid.uuid4().hex[:8]}")
    env = Environment.start(spec, backend, ready_timeout=120)
    try:
        captures = CaptureServer.start(["slack"])
        try:
            app.write_dotenv(app.settings(env.postgres, env.temporal, captures))
            app.run("migrate")
            yield env, captures
        finally:
            captures.stop()
    finally:
        env.stop()


@dataclass
class LimitSample:
    postgres_alone: float
    temporal_alone: float
    both_ready: float
    services_teardown: float
    worker_to_polling: float
    pipeline_alone: float

    @property
    def slower_alone(self) -> float:
        return max(self.postgres_alone, self.temporal_alone)

    @property
    def limit(self) -> float:
        return self.slower_alone + self.worker_to_polling + self.pipeline_alone


def limit_sample(backend: AppSpecBackend, app: App) -> LimitSample:
    pg = services_bench._alone(backend, "postgres")
    tp = services_bench._alone(backend, "temporal")
    ready, teardown = services_bench._parallel(backend)
    with app_environment(backend, app) as (env, _):
        worker, to_polling = worker_to_polling(app, env.temporal)
        try:
            pipeline = app.run("trigger")
        finally:
            stop(worker)
    return LimitSample(pg, tp, ready, teardown, to_polling, pipeline)


def first_ready_fresh_state() -> float:
    """Process backend, empty state dir: the one-off cost of building the Postgres template."""
    state = Path(tempfile.mkdtemp(prefix="staging-bench-", dir=default_base_dir().parent))
    state.chmod(0o711)
    try:
        ready, _ = services_bench._parallel(ProcessBackend(state))
        return ready
    finally:
        import shutil

        shutil.rmtree(state, ignore_errors=True)


def summarize_limit(samples: list[LimitSample]) -> dict[str, Any]:
    figures = {
        name: Stat.of(getattr(s, name) for s in samples)
        for name in (
            "postgres_alone",
            "temporal_alone",
            "slower_alone",
            "both_ready",
            "services_teardown",
            "worker_to_polling",
            "pipeline_alone",
            "limit",
        )
    }
    out: dict[str, Any] = {k: v.to_dict() for k, v in figures.items()}
    out["parallel_vs_slower_alone"] = round(
        figures["both_ready"].median / figures["slower_alone"].median, 3
    )
    return out
