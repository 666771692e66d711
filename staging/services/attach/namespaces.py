"""A run's namespace and workflows on an existing Temporal cluster (async, one client each).

A namespace per run is registered through the workflow service (its `data` carries the
owner record) and deleted through the operator service. In a shared namespace a run owns
exactly the workflows on its own (run-suffixed) task queues, which is how they are found
and terminated.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from staging.imports import IMPORT_LOCK
from staging.services.attach.records import NAMESPACE_KEY, OwnerRecord

if TYPE_CHECKING:
    from temporalio.client import Client

_RPC = timedelta(seconds=10)
_RETENTION = timedelta(days=1)
_IDENTITY = "staging-attach"


def _grpc_status(exc: BaseException) -> str:
    return str(getattr(getattr(exc, "status", None), "name", ""))


async def register(client: Client, name: str, record: OwnerRecord) -> None:
    with IMPORT_LOCK:
        from google.protobuf.duration_pb2 import Duration
        from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest

    retention = Duration()
    retention.FromTimedelta(_RETENTION)
    request = RegisterNamespaceRequest(
        namespace=name,
        description=f"staging run {record.run_id} ({record.owner})",
        workflow_execution_retention_period=retention,
        data={NAMESPACE_KEY: record.text()},
    )
    await client.workflow_service.register_namespace(request, timeout=_RPC)


async def exists(client: Client, name: str) -> bool:
    """Registered and usable (a deleted one, or one being deleted, is not)."""
    with IMPORT_LOCK:
        from temporalio.api.enums.v1 import NamespaceState
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    try:
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=name), timeout=_RPC
        )
    except Exception as exc:
        if _grpc_status(exc) == "NOT_FOUND":
            return False
        raise
    return bool(described.namespace_info.state == NamespaceState.NAMESPACE_STATE_REGISTERED)


async def usable(client: Client, name: str) -> bool:
    """The frontend serves requests in `name` (a new namespace takes a moment to show)."""
    with IMPORT_LOCK:
        from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest

    try:
        await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(namespace=name, page_size=1), timeout=_RPC
        )
    except Exception as exc:
        if _grpc_status(exc) in ("NOT_FOUND", "UNAVAILABLE"):
            return False
        raise
    return True


async def delete(client: Client, name: str) -> bool:
    """Delete `name` (its workflows go with it); False when it was already gone."""
    with IMPORT_LOCK:
        from temporalio.api.operatorservice.v1 import DeleteNamespaceRequest

    try:
        await client.operator_service.delete_namespace(
            DeleteNamespaceRequest(namespace=name), timeout=_RPC
        )
    except Exception as exc:
        if _grpc_status(exc) == "NOT_FOUND":
            return False
        raise
    return True


async def set_record(client: Client, name: str, record: OwnerRecord) -> None:
    with IMPORT_LOCK:
        from temporalio.api.namespace.v1 import UpdateNamespaceInfo
        from temporalio.api.workflowservice.v1 import UpdateNamespaceRequest

    request = UpdateNamespaceRequest(
        namespace=name, update_info=UpdateNamespaceInfo(data={NAMESPACE_KEY: record.text()})
    )
    await client.workflow_service.update_namespace(request, timeout=_RPC)


async def owned_namespaces(client: Client) -> list[tuple[str, OwnerRecord]]:
    """Every registered namespace that carries a staging owner record."""
    with IMPORT_LOCK:
        from temporalio.api.enums.v1 import NamespaceState
        from temporalio.api.workflowservice.v1 import ListNamespacesRequest

    found: list[tuple[str, OwnerRecord]] = []
    token = b""
    while True:
        page = await client.workflow_service.list_namespaces(
            ListNamespacesRequest(page_size=100, next_page_token=token), timeout=_RPC
        )
        for item in page.namespaces:
            info = item.namespace_info
            record = OwnerRecord.parse(info.data.get(NAMESPACE_KEY))
            if record is not None and info.state == NamespaceState.NAMESPACE_STATE_REGISTERED:
                found.append((info.name, record))
        token = page.next_page_token
        if not token:
            return found


def queue_query(queues: Iterable[str], *, running: bool = True) -> str:
    """A visibility query for the workflows on `queues` (quotes escaped)."""
    names = [q.replace("\\", "\\\\").replace("'", "\\'") for q in queues]
    clause = " OR ".join(f"TaskQueue = '{q}'" for q in names)
    status = "ExecutionStatus = 'Running' AND " if running else ""
    return f"{status}({clause})"


async def terminate_on_queues(
    client: Client, namespace: str, queues: Iterable[str], reason: str
) -> int:
    """Terminate the running workflows of `queues` in `namespace`; how many were."""
    with IMPORT_LOCK:
        from temporalio.api.common.v1 import WorkflowExecution
        from temporalio.api.workflowservice.v1 import (
            ListWorkflowExecutionsRequest,
            TerminateWorkflowExecutionRequest,
        )

    queues = list(queues)
    if not queues:
        return 0
    query, done, token = queue_query(queues), 0, b""
    while True:
        page = await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(
                namespace=namespace, query=query, page_size=200, next_page_token=token
            ),
            timeout=_RPC,
        )
        for info in page.executions:
            execution = WorkflowExecution(
                workflow_id=info.execution.workflow_id, run_id=info.execution.run_id
            )
            request = TerminateWorkflowExecutionRequest(
                namespace=namespace, workflow_execution=execution, reason=reason,
                identity=_IDENTITY,
            )  # fmt: skip
            try:
                await client.workflow_service.terminate_workflow_execution(request, timeout=_RPC)
                done += 1
            except Exception as exc:
                if _grpc_status(exc) != "NOT_FOUND":  # finished meanwhile
                    raise
        token = page.next_page_token
        if not token:
            return done
