"""Run a pipeline by hand: `python scripts/run_pipeline.py everflow`.

Starts `PipelineWorkflow` on the worker's task queue, waits for it, prints the result as
JSON and exits 0; on failure prints the root cause and exits 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
import uuid
from datetime import timedelta
from pathlib import Path

# Run as a file, not installed: make the app's package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from everflow.settings import get_settings
from everflow.workflows import PipelineWorkflow
from temporalio.client import Client, WorkflowFailureError


def root_cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"


async def run(pipeline: str) -> int:
    settings = get_settings()
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    workflow_id = f"everflow-{pipeline}-{uuid.uuid4().hex[:12]}"
    print(f"started {workflow_id} on task queue {settings.task_queue!r}", file=sys.stderr)
    try:
        result = await client.execute_workflow(
            PipelineWorkflow.run,
            pipeline,
            id=workflow_id,
            task_queue=settings.task_queue,
            execution_timeout=timedelta(minutes=30),
        )
    except WorkflowFailureError as err:
        print(f"pipeline {pipeline} failed ({workflow_id}): {root_cause(err)}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python scripts/run_pipeline.py PIPELINE", file=sys.stderr)
        return 2
    return asyncio.run(run(argv[1]))


if __name__ == "__main__":
    try:
        code = main(sys.argv)
    except Exception:
        traceback.print_exc()
        code = 1
    # temporalio's Rust threads can abort interpreter shutdown with SIGABRT ("PyGILState_Release
    # ... finalizing", sdk-python issue 300), turning a finished run into exit -6 with its
    # output unflushed. Nothing is left to clean up: flush and leave without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
