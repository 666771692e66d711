"""Rewrite the `change.patch` files from the current app: `python -m tests.corpus.regenerate`.

Each case's change is stated once, below, as exact text edits; this script applies them
to a fresh git copy of `examples/everflow` and saves `git diff` as the patch. When the app
changes and `tests/unit/test_corpus.py` says a patch no longer applies, fix the edit here
(an edit whose text is no longer found stops the script and names it) and re-run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.corpus import CORPUS, CorpusError, _git, materialize
from tests.corpus.settings_cases import SETTINGS_CHANGES


def edit(app: Path, rel: str, old: str, new: str) -> None:
    path = app / rel
    text = path.read_text()
    if text.count(old) != 1:
        raise CorpusError(f"{rel}: expected exactly one {old!r}, found {text.count(old)}")
    path.write_text(text.replace(old, new))


def env_file_removed(app: Path) -> None:
    edit(app, "everflow/settings.py", '        env_file=".env",\n', "")


def sandbox_structlog(app: Path) -> None:
    edit(
        app,
        "everflow/workflows.py",
        "from typing import Any\n\nfrom temporalio import workflow\n",
        "from typing import Any\n\nimport structlog\nfrom temporalio import workflow\n",
    )
    edit(
        app,
        "everflow/workflows.py",
        "with workflow.unsafe.imports_passed_through():\n    import structlog\n\n",
        "with workflow.unsafe.imports_passed_through():\n",
    )


def sandbox_fixed_unsandboxed(app: Path) -> None:
    sandbox_structlog(app)
    edit(
        app,
        "everflow/worker.py",
        "from temporalio.worker import Worker\n",
        "from temporalio.worker import UnsandboxedWorkflowRunner, Worker\n",
    )
    edit(
        app,
        "everflow/worker.py",
        "            activity_executor=executor,\n",
        "            activity_executor=executor,\n"
        "            workflow_runner=UnsandboxedWorkflowRunner(),\n",
    )


def wrong_task_queue(app: Path) -> None:
    edit(
        app,
        "everflow/worker.py",
        "    task_queue = settings.task_queue\n",
        '    task_queue = "everflow-v2"  # the v2 rollout gets its own queue\n',
    )


def password_not_escaped(app: Path) -> None:
    settings = "everflow/settings.py"
    edit(app, settings, "from urllib.parse import quote\n", "")
    edit(
        app,
        settings,
        '        """`postgresql://` DSN for psycopg. Generated passwords contain @ : / % # and\n'
        "        spaces, which mean something in a URL, so user and password are"
        ' percent-escaped."""\n'
        '        user = quote(self.db_user, safe="")\n'
        '        password = quote(self.db_password.get_secret_value(), safe="")\n'
        "        return (\n"
        '            f"postgresql://{user}:{password}@{self.db_host}:{self.db_port}"\n'
        "            f\"/{quote(self.db_name, safe='')}\"\n",
        '        """`postgresql://` DSN for psycopg."""\n'
        "        password = self.db_password.get_secret_value()\n"
        "        return (\n"
        '            f"postgresql://{self.db_user}:{password}@{self.db_host}:{self.db_port}'
        '/{self.db_name}"\n',
    )


def missing_migration(app: Path) -> None:
    text = (app / "everflow/migrate.py").read_text()
    start = text.index('    """\n    create table if not exists daily_conversions')
    end = text.index('    """,\n', start + 8) + len('    """,\n')
    edit(app, "everflow/migrate.py", text[start:end], "")


def notify_flood(app: Path) -> None:
    edit(
        app,
        "everflow/workflows.py",
        "        if summary.rejected:\n"
        '            _log("pipeline.rows_rejected", pipeline=pipeline,'
        " rejected=len(summary.rejected))\n",
        "        for bad in summary.rejected:\n"
        "            await self._notify(\n"
        '                f"Pipeline failed: {pipeline} - line {bad.line} rejected: {bad.reason}"\n'
        "            )\n",
    )


def slow_but_fine(app: Path) -> None:
    edit(app, "everflow/activities.py", "import json\n", "import json\nimport time\n")
    edit(
        app,
        "everflow/activities.py",
        "    summary = aggregate(rows)\n",
        "    time.sleep(3)  # the upstream export API is slow to page; harmless\n"
        "    summary = aggregate(rows)\n",
    )


def sandbox_reexport(app: Path) -> None:
    # The package re-exports the workflow; the workflow module imports rich outside the
    # passthrough block. The culprit is workflows.py, not everflow/__init__.py.
    edit(
        app,
        "everflow/__init__.py",
        '"""everflow: daily affiliate conversion rollups, run as a Temporal pipeline."""\n',
        '"""everflow: daily affiliate conversion rollups, run as a Temporal pipeline."""\n\n'
        "from everflow.workflows import PipelineWorkflow\n\n"
        '__all__ = ["PipelineWorkflow"]\n',
    )
    edit(
        app,
        "everflow/workflows.py",
        "from temporalio import workflow\nfrom temporalio.common import RetryPolicy\n",
        "from rich.console import Console\nfrom temporalio import workflow\n"
        "from temporalio.common import RetryPolicy\n",
    )
    edit(
        app,
        "everflow/workflows.py",
        "log = structlog.get_logger(__name__)\n",
        "log = structlog.get_logger(__name__)\nconsole = Console(stderr=True)\n",
    )
    edit(
        app,
        "everflow/worker.py",
        "from everflow.workflows import PipelineWorkflow\n",
        "from everflow import PipelineWorkflow\n",
    )


def sandbox_runtime_replayed(app: Path) -> None:
    # uuid.uuid4() inside the workflow's run: every workflow task fails in the sandbox.
    edit(
        app,
        "everflow/workflows.py",
        "from datetime import timedelta\n",
        "import uuid\nfrom datetime import timedelta\n",
    )
    edit(
        app,
        "everflow/workflows.py",
        '        _log("pipeline.started", pipeline=pipeline)\n',
        "        batch_id = str(uuid.uuid4())  # tag the rows of this run\n"
        '        _log("pipeline.started", pipeline=pipeline, batch_id=batch_id)\n',
    )


def sandbox_runtime(app: Path) -> None:
    # The same change in an app that records no histories: only running it shows it.
    sandbox_runtime_replayed(app)
    text = (app / "pyproject.toml").read_text()
    start = text.index("# Workflow histories recorded from real runs")
    end = text.index('histories = ["tests/histories/*.json"]\n') + len(
        'histories = ["tests/histories/*.json"]\n'
    )
    edit(app, "pyproject.toml", text[start:end], "")


def alembic_percent(app: Path) -> None:
    # The team's migration hands the DSN to alembic's Config.set_main_option, which is
    # configparser's set(): the `%` of a percent-escaped password is an interpolation.
    edit(app, "everflow/migrate.py", "import sys\n", "import configparser\nimport sys\n")
    edit(
        app,
        "everflow/migrate.py",
        "def migrate() -> None:\n    settings = get_settings()\n",
        "def alembic_config(url: str) -> configparser.ConfigParser:\n"
        '    """What alembic.config.Config does with set_main_option("sqlalchemy.url", url)."""\n'
        "    file_config = configparser.ConfigParser()\n"
        '    file_config.add_section("alembic")\n'
        '    file_config.set("alembic", "sqlalchemy.url", url)\n'
        "    return file_config\n\n\n"
        "def migrate() -> None:\n    settings = get_settings()\n"
        "    alembic_config(settings.database_url)\n",
    )


def workflow_not_registered(app: Path) -> None:
    # The pipeline starts a workflow type by a name the worker does not register.
    edit(
        app,
        "pyproject.toml",
        'command = ["python", "scripts/run_pipeline.py", "everflow"]\n',
        'workflow = "EverflowPipeline"\nargs = ["everflow"]\n',
    )


CHANGES: dict[str, Callable[[Path], None]] = {
    "env-file-removed": env_file_removed,
    "sandbox-structlog": sandbox_structlog,
    "sandbox-fixed-unsandboxed": sandbox_fixed_unsandboxed,
    "wrong-task-queue": wrong_task_queue,
    "password-not-escaped": password_not_escaped,
    "missing-migration": missing_migration,
    "notify-flood": notify_flood,
    "slow-but-fine": slow_but_fine,
    "sandbox-reexport": sandbox_reexport,
    "sandbox-runtime": sandbox_runtime,
    "sandbox-runtime-replayed": sandbox_runtime_replayed,
    "alembic-percent": alembic_percent,
    "workflow-not-registered": workflow_not_registered,
}
CHANGES.update(SETTINGS_CHANGES)  # settings judged by delivery: tests/corpus/settings_cases.py


def regenerate(case: str, scratch: Path) -> str:
    app = materialize("good", scratch / case)
    CHANGES[case](app)
    diff = _git(app, "diff")
    if diff.returncode != 0 or not diff.stdout:
        raise CorpusError(f"{case}: no diff ({diff.stderr.strip()})")
    (CORPUS / case / "change.patch").write_text(diff.stdout)
    return diff.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus.regenerate")
    parser.add_argument("cases", nargs="*", metavar="CASE", help="default: all")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.cases) - set(CHANGES))
    if unknown:
        parser.error(f"unknown cases {unknown}; patched cases: {', '.join(CHANGES)}")
    scratch = Path(tempfile.mkdtemp(prefix="corpus-regen-"))
    try:
        for case in args.cases or list(CHANGES):
            diff = regenerate(case, scratch)
            print(f"{case}: {len(diff.splitlines())} lines")
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
