"""The pipeline workflow: extract -> transform -> load, and one Slack message on failure.

Workflow code runs in Temporal's sandbox, which re-imports modules per run and rejects
non-deterministic calls. structlog (and through it rich) and the activities module are
passed through the sandbox: they are only used from here for logging and as activity
references, never for workflow logic.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import structlog

    from everflow import activities

log = structlog.get_logger(__name__)

# Transient failures (a DB restart, a deploy) heal within seconds; a wrong password or a
# missing table does not, and should fail the run rather than retry for hours.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=10,
)
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)


def _log(event: str, **fields: Any) -> None:
    # Replays re-run workflow code; log each event once, not once per replay.
    if not workflow.unsafe.is_replaying():
        log.info(event, workflow_id=workflow.info().workflow_id, **fields)


def _root_message(error: BaseException) -> str:
    """The innermost failure's first line: 'password authentication failed', not 'Activity
    task failed' (nor the SQL excerpt psycopg appends)."""
    while error.__cause__ is not None:
        error = error.__cause__
    message = error.message if isinstance(error, ApplicationError) else str(error)
    return message.strip().split("\n", 1)[0]


@workflow.defn
class PipelineWorkflow:
    @workflow.run
    async def run(self, pipeline: str) -> dict[str, Any]:
        _log("pipeline.started", pipeline=pipeline)
        try:
            rows = await workflow.execute_activity(
                activities.extract,
                pipeline,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RETRY,
            )
            summary = await workflow.execute_activity(
                activities.transform,
                rows,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RETRY,
            )
            written = await workflow.execute_activity(
                activities.load,
                args=[pipeline, summary.totals],
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RETRY,
            )
        except ActivityError as err:
            message = _root_message(err)
            _log("pipeline.failed", pipeline=pipeline, error=message)
            await self._notify(f"Pipeline failed: {pipeline} - {message}")
            raise
        if summary.rejected:
            _log("pipeline.rows_rejected", pipeline=pipeline, rejected=len(summary.rejected))
        result = {
            "pipeline": pipeline,
            "rows_read": summary.rows_read,
            "rows_rejected": len(summary.rejected),
            "totals": len(summary.totals),
            "rows_written": written,
        }
        _log("pipeline.finished", **result)
        return result

    async def _notify(self, text: str) -> None:
        try:
            await workflow.execute_activity(
                activities.notify,
                text,
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as err:
            # A broken webhook must not hide the pipeline's own failure.
            _log("notify.failed", error=_root_message(err))
