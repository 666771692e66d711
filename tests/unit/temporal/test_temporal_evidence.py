"""Worker crashes lead with the exception line, without staging's own frames (issue 12)."""

from __future__ import annotations

from staging.result import FailureClass
from staging.temporal.pollers import PollerResult

IMPORT_ERROR = (
    "ImportError: cannot import name 'pick' from 'everflow.helpers' (/ws/app/everflow/helpers.py)"
)
FORKED_WORKER = """\
2026-12-01T04:00:00Z [info] worker.starting
Traceback (most recent call last):
  File "/work/main/staging/forkserver/server.py", line 210, in _child
    runpy.run_module(module, run_name="__main__", alter_sys=True)
  File "<frozen runpy>", line 226, in run_module
  File "<frozen runpy>", line 98, in _run_module_code
  File "<frozen runpy>", line 88, in _run_code
  File "<frozen importlib._bootstrap>", line 1176, in _find_and_load
  File "<frozen importlib._bootstrap_external>", line 940, in exec_module
  File "/ws/app/everflow/worker.py", line 22, in <module>
    from everflow.workflows import PipelineWorkflow
  File "/ws/app/everflow/workflows.py", line 9, in <module>
    from everflow.helpers import pick
ImportError: cannot import name 'pick' from 'everflow.helpers' (/ws/app/everflow/helpers.py)
"""


def test_worker_crash_cause_carries_the_exception_line() -> None:
    result = PollerResult(ready=False, reason="exited", task_queue="everflow")

    diagnosis = result.diagnosis(FORKED_WORKER, returncode=1, root="/ws/app")

    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.WORKER_CRASHED
    assert diagnosis.cause == (
        f"the worker exited with exit code 1 before polling task queue 'everflow': {IMPORT_ERROR}"
    )
    assert diagnosis.evidence[:3] == (
        IMPORT_ERROR,
        "at everflow/workflows.py:9 in <module>: from everflow.helpers import pick",
        "at everflow/worker.py:22 in <module>: from everflow.workflows import PipelineWorkflow",
    )
    shown = "\n".join(diagnosis.evidence)
    assert "forkserver" not in shown and "runpy" not in shown and "importlib" not in shown


def test_worker_crash_on_a_known_trap_explains_it() -> None:
    output = (
        "Traceback (most recent call last):\n"
        '  File "/ws/app/everflow/worker.py", line 30, in <module>\n'
        "    conn = psycopg.connect(settings.database_url)\n"
        'psycopg.ProgrammingError: missing "=" after "postgresql+asyncpg://app:***@db/app" '
        "in connection info string\n"
    )
    result = PollerResult(ready=False, reason="exited", task_queue="everflow")

    diagnosis = result.diagnosis(output, returncode=1)

    assert diagnosis is not None
    assert "postgresql+asyncpg://" in diagnosis.cause and "'+asyncpg'" in diagnosis.hint
