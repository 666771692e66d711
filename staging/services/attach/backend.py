"""`backend = "attach"`: this run's share of services that already exist elsewhere.

Nothing is started. Per run, `postgres()` creates a database and a role (hostile password,
granted that database only) and `temporal()` creates a namespace (`namespace_prefix`) or
checks the shared one (`namespace`); every task queue of the config is suffixed with the
run id when the backend first learns the run (so every phase, and the app through
`{worker.task_queue}`, uses the run's own queues). Teardown terminates the run's running
workflows, deletes a namespace it created, then drops the database and the role, whose
comment is the run's owner record (`records`): it goes last, so an interrupted teardown
stays findable by the next run's sweep, from any machine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from staging.services.attach import namespaces, pg
from staging.services.attach.loop import in_thread
from staging.services.attach.records import OwnerRecord
from staging.services.attach.services import AttachPostgres, AttachTemporal
from staging.services.attach.target import AttachTarget, resolve
from staging.services.base import ServiceSpec
from staging.services.temporal_endpoint import TemporalEndpoint

if TYPE_CHECKING:
    from temporalio.client import Client

    from staging.config.model import StagingConfig

_REASON = "staging: the run that owns this workflow ended"


class AttachBackend:
    """`Backend` over an existing cluster; one instance serves one run (or one `down`)."""

    name = "attach"

    def __init__(self, config: StagingConfig, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.target: AttachTarget = resolve(
            config.attach, config.timeout, os.environ if environ is None else environ
        )
        self._run_id = ""
        self.record: OwnerRecord | None = None
        # Postgres holds the record: it is dropped only once the Temporal side is cleaned.
        self.temporal_clean = threading.Event()
        self.temporal_failed: str | None = None

    # -- the run ------------------------------------------------------------------------

    def prepare(self, spec: ServiceSpec) -> OwnerRecord:
        """Name the run's resources and suffix the config's task queues (once per run)."""
        if self.record is not None:
            return self.record
        self._run_id = spec.run_id
        queues = self.config.suffix_task_queues(f"-{spec.run_id}")
        namespace = self.target.shared_namespace or (self.target.namespace_prefix + spec.run_id)
        self.record = OwnerRecord.mine(
            spec.run_id,
            self.target.lease,
            database=pg.run_name(spec.database, spec.run_id),
            role=pg.run_name(spec.user, spec.run_id),
            temporal=self.target.temporal.address,
            namespace=namespace,
            namespace_created=not self.target.shared_namespace,
            task_queues=tuple(queues.values()),
        )
        return self.record

    def postgres(self, spec: ServiceSpec, password: str) -> AttachPostgres:
        return AttachPostgres(self, self.prepare(spec), password)

    def temporal(self, spec: ServiceSpec) -> AttachTemporal:
        return AttachTemporal(self, self.prepare(spec))

    def client(self, namespace: str | None = None) -> Callable[[], Awaitable[Client]]:
        endpoint = self.endpoint(namespace or self.target.shared_namespace or "default")
        return lambda: endpoint.connect(connect_timeout=10)

    def endpoint(self, namespace: str) -> TemporalEndpoint:
        t = self.target.temporal
        return TemporalEndpoint(
            t.host,
            t.port,
            namespace,
            tls=t.tls,
            api_key=t.api_key,
            namespace_shared=namespace == self.target.shared_namespace,
        )

    # -- leftovers ----------------------------------------------------------------------

    def sweep(self, *, include_detached: bool = False) -> list[str]:
        """Remove every abandoned run's database, role, workflows and namespace.

        Only runs recorded against this Temporal cluster (another project may share the
        Postgres server with another cluster); namespaces only under this `namespace_prefix`
        (a shared namespace, or an API key scoped to one, lists no others).
        """

        def mine(record: OwnerRecord) -> bool:
            ours = record.temporal in ("", self.target.temporal.address)
            return ours and record.run_id != self._run_id

        with pg.admin_connection(self.target.admin) as conn:
            records = pg.run_records(conn) + pg.orphan_databases(conn)
        records = [r for r in records if mine(r) and r.abandoned(include_detached=include_detached)]
        removed = [self._remove_or_say_why(r) for r in records]
        if self.target.namespace_prefix:
            done = {r.namespace for r in records}
            removed += in_thread(lambda: self._sweep_namespaces(include_detached, done))
        return removed

    async def _sweep_namespaces(self, include_detached: bool, done: set[str]) -> list[str]:
        client = await self.client()()
        removed = []
        for name, record in await namespaces.owned_namespaces(client):
            if name in done or record.run_id == self._run_id:
                continue
            if not name.startswith(self.target.namespace_prefix):
                continue
            abandoned = record.abandoned(include_detached=include_detached)
            if abandoned and await namespaces.delete(client, name):
                removed.append(f"attach: namespace {name} of run {record.run_id} ({record.owner})")
        return removed

    def _remove_or_say_why(self, record: OwnerRecord) -> str:
        """One abandoned run that cannot be removed (another sweeper got there first, a
        lost connection) must not keep the others: say it, and the next sweep retries."""
        try:
            return self._remove(record)
        except Exception as exc:
            return (
                f"attach: run {record.run_id} ({record.owner}) not removed, the next sweep "
                f"retries: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )

    def _remove(self, record: OwnerRecord) -> str:
        """Workflows, namespace, database, then the role (the record) — in that order."""
        terminated = in_thread(lambda: self.clean_temporal(record))
        with pg.admin_connection(self.target.admin) as conn:
            pg.drop_run_database(conn, record.role, record.database)
        what = f"database {record.database}, role {record.role}, {terminated} running workflow(s)"
        if record.namespace_created:
            what += f", namespace {record.namespace}"
        return f"attach: run {record.run_id} ({record.owner}): {what}"

    async def clean_temporal(self, record: OwnerRecord) -> int:
        client = await self.client()()
        if not await namespaces.exists(client, record.namespace):  # none: no workflows
            return 0
        terminated = await namespaces.terminate_on_queues(
            client, record.namespace, record.task_queues, _REASON
        )
        if record.namespace_created:
            await namespaces.delete(client, record.namespace)
        return terminated

    def stop_run(self, run_id: str) -> list[str]:
        """`staging down`: remove one run whatever the state of its owner."""
        with pg.admin_connection(self.target.admin) as conn:
            records = [r for r in pg.run_records(conn) if r.run_id == run_id]
        return [self._remove(r) for r in records]

    def detach(self, run_id: str) -> None:
        """The run's owner exits on purpose: no lease, only `staging down` removes it."""
        with pg.admin_connection(self.target.admin) as conn:
            for record in pg.run_records(conn):
                if record.run_id == run_id:
                    pg.set_record(conn, record.detach())
                    if record.namespace_created:
                        in_thread(
                            lambda r=record: self._detach_namespace(r)  # type: ignore[misc]
                        )

    async def _detach_namespace(self, record: OwnerRecord) -> None:
        client = await self.client()()
        await namespaces.set_record(client, record.namespace, record.detach())
