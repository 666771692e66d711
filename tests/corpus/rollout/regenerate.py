"""Rewrite the rollout cases' `change.patch`: `python -m tests.corpus.rollout.regenerate`."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.corpus import _git, materialize
from tests.corpus.regenerate import edit
from tests.corpus.rollout import ROLLOUT

_AFTER_EXTRACT = """                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RETRY,
            )
            summary = await workflow.execute_activity(
"""
_PACE = """            # Let the source API's rate limit recover between the steps.
            await workflow.sleep(timedelta(milliseconds=50))
"""
_PACE_PATCHED = """\
            # Let the source API's rate limit recover between the steps. Guarded: workflows
            # already running took no pause here, and replay their history without it.
            if workflow.patched("pace-transform"):
                await workflow.sleep(timedelta(milliseconds=50))
"""


def _pause(app: Path, code: str) -> None:
    head, call = _AFTER_EXTRACT.rsplit("            summary", 1)
    edit(app, "everflow/workflows.py", _AFTER_EXTRACT, head + code + "            summary" + call)


def paced_transform(app: Path) -> None:
    _pause(app, _PACE)
    # No recorded history: the replay phase cannot see it, only the rollout can.
    edit(app, "pyproject.toml", 'histories = ["tests/histories/*.json"]', "histories = []")


def paced_transform_patched(app: Path) -> None:
    _pause(app, _PACE_PATCHED)


_LOG_TABLE = {
    False: "        loaded_at timestamptz not null default now()\n",
    True: "        loaded_at timestamptz not null default now(),\n"
    "        primary key (day, offer_id)\n",
}
_LOG_ROW = {
    False: "insert into load_log (day, offer_id) values (%s, %s)",
    True: "insert into load_log (day, offer_id) values (%s, %s) on conflict do nothing",
}


def _load_log(app: Path, idempotent: bool) -> None:
    """`load` also writes an audit row per total, one by one (a throttled warehouse API)."""
    edit(
        app,
        "everflow/migrate.py",
        '        primary key (workflow_id, run_id)\n    )\n    """,\n]\n',
        '        primary key (workflow_id, run_id)\n    )\n    """,\n    """\n'
        "    create table if not exists load_log (\n"
        "        day date not null,\n        offer_id integer not null,\n"
        + _LOG_TABLE[idempotent]
        + '    )\n    """,\n]\n',
    )
    edit(app, "everflow/activities.py", "import json\n", "import json\nimport time\n")
    edit(
        app,
        "everflow/activities.py",
        "\n\n@activity.defn\ndef load(",
        f'\nLOG_ROW = "{_LOG_ROW[idempotent]}"\n\n\n@activity.defn\ndef load(',
    )
    edit(
        app,
        "everflow/activities.py",
        '    log.info("load.done", pipeline=pipeline',
        "    # The audit log, row by row: the warehouse behind it throttles bulk writes.\n"
        "    with psycopg.connect(settings.database_url, connect_timeout=10, autocommit=True)"
        " as c:\n"
        "        for t in totals:\n"
        "            c.execute(LOG_ROW, (t.day, t.offer_id))\n"
        "            time.sleep(0.03)\n"
        '    log.info("load.done", pipeline=pipeline',
    )
    edit(app, "pyproject.toml", "ready_timeout = 30\n", "ready_timeout = 30\ninterrupt = true\n")
    edit(
        app,
        "pyproject.toml",
        'checks = ["select count(*) > 0 from daily_conversions"]',
        'checks = [\n    "select count(*) > 0 from daily_conversions",\n'
        '    "select (select count(*) from load_log) = '
        '(select count(*) from daily_conversions)",\n]',
    )


def load_log_not_idempotent(app: Path) -> None:
    _load_log(app, idempotent=False)


def load_log_idempotent(app: Path) -> None:
    _load_log(app, idempotent=True)


CHANGES: dict[str, Callable[[Path], None]] = {
    "load-log-not-idempotent": load_log_not_idempotent,
    "load-log-idempotent": load_log_idempotent,
    "paced-transform": paced_transform,
    "paced-transform-patched": paced_transform_patched,
}


def main() -> None:
    for case, change in CHANGES.items():
        scratch = Path(tempfile.mkdtemp(prefix="rollout-corpus-"))
        try:
            app = materialize("good", scratch / "app")
            change(app)
            diff = _git(app, "diff", "--no-color", "--no-ext-diff")
            (ROLLOUT / case).mkdir(exist_ok=True)
            (ROLLOUT / case / "change.patch").write_text(diff.stdout)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
