"""What staging observes on the Temporal side of a run.

- `pollers`: worker readiness (a workflow poller on the task queue) — phase "worker".
- `sandbox`: a worker's output naming the module the workflow sandbox blocked.
- `watch`: an activity stuck retrying the same error, while a pipeline runs.
- `failures`: every workflow's outcome and root cause, after a pipeline ran.
- `trigger`: pipelines the harness starts itself (workflow type + args).

- `scope`: which workflows of the namespace are the run's (`RunScope`); every scan
  takes one.

The APIs are async (temporalio is); the runner is synchronous, so `run_sync` connects a
client in a fresh event loop and runs one coroutine with it:

    result = run_sync(endpoint, endpoint.namespace,
                      lambda client: wait_for_poller(client, "everflow", timeout=30,
                                                     alive=lambda: proc.poll() is None))

`StuckWatcher` is the one sync-native piece: it polls in its own thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.client import Client

from staging.db_errors import is_db_auth_failure, mentions_dsn_escaping, scrub_dsn_fragments
from staging.errors import ServiceUnavailable
from staging.services.base import TemporalEndpoint
from staging.temporal.failures import (
    RootCause,
    WorkflowOutcome,
    diagnose_cause,
    first_failure,
    root_cause,
    workflow_outcome,
    workflow_outcomes,
)
from staging.temporal.pollers import PollerResult, task_queue_pollers, wait_for_poller
from staging.temporal.sandbox import SandboxError, parse_sandbox_error
from staging.temporal.scope import WHOLE_NAMESPACE, RunScope
from staging.temporal.trigger import TriggerResult, start_and_wait
from staging.temporal.watch import RetryTracker, StuckActivity, StuckWatcher, find_stuck_activity

T = TypeVar("T")

__all__ = [
    "WHOLE_NAMESPACE",
    "PollerResult",
    "RetryTracker",
    "RootCause",
    "RunScope",
    "SandboxError",
    "StuckActivity",
    "StuckWatcher",
    "TriggerResult",
    "WorkflowOutcome",
    "connect",
    "diagnose_cause",
    "find_stuck_activity",
    "first_failure",
    "is_db_auth_failure",
    "mentions_dsn_escaping",
    "parse_sandbox_error",
    "root_cause",
    "run_sync",
    "scrub_dsn_fragments",
    "start_and_wait",
    "task_queue_pollers",
    "wait_for_poller",
    "workflow_outcome",
    "workflow_outcomes",
]


async def connect(target: TemporalEndpoint | str, namespace: str = "default") -> Client:
    """A client for the run's Temporal; `ServiceUnavailable` if it does not answer.

    `target` is an endpoint (TLS, API key...), or a plain `host:port` in `namespace`.
    """
    endpoint = TemporalEndpoint.of(target, namespace)
    try:
        return await endpoint.connect()
    except RuntimeError as exc:  # temporalio reports a failed connect as RuntimeError
        raise ServiceUnavailable(
            "could not connect to the staging Temporal server",
            expected=f"a Temporal frontend at {endpoint.address} (namespace {endpoint.namespace})",
            observed=str(exc),
            hint="check that the Temporal service is still running (see its log)",
        ) from exc


def run_sync(
    target: TemporalEndpoint | str, namespace: str, fn: Callable[[Client], Awaitable[T]]
) -> T:
    """Run `fn(client)` to completion in a fresh event loop; for synchronous callers.

    Must not be called from inside a running event loop (use the async API there).
    """

    async def main() -> T:
        return await fn(await connect(target, namespace))

    return asyncio.run(main())
