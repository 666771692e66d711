"""Preparation steps and recorded histories found in the app's files.

alembic (an `alembic.ini`) -> `python -m alembic upgrade heads`; a `migrate` module or
script -> run it; else a dir of `*.sql` files -> applied in name order by a short
psycopg snippet. Histories: `*.json` in a dir named `histories`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from staging.init.pyfiles import SKIP_DIRS, PyFile, has_main_block

_SQL_DIRS = ("migrations", "sql", "schema", "db")
# Applies every *.sql file of a dir in name order, each in one transaction. The DSN comes
# from a process variable that is no app setting, so it cannot mask the settings loader.
SQL_SNIPPET = (
    "import os,pathlib,sys,psycopg\n"
    "with psycopg.connect(os.environ['STAGING_INIT_SQL_DSN']) as c:\n"
    "    for f in sorted(pathlib.Path(sys.argv[1]).glob('*.sql')):\n"
    "        c.execute(f.read_text())\n"
)
SQL_DSN_VAR = "STAGING_INIT_SQL_DSN"


@dataclass(frozen=True)
class SetupStep:
    name: str
    command: list[str]
    why: str
    needs_dsn: bool = False  # the `*.sql` snippet reads SQL_DSN_VAR from process_env


def setup_steps(project_dir: Path, files: list[PyFile]) -> list[SetupStep]:
    if (project_dir / "alembic.ini").is_file():
        return [
            SetupStep(
                "alembic",
                ["python", "-m", "alembic", "upgrade", "heads"],
                "alembic.ini (run by the app's interpreter, so its venv's alembic is used)",
            )
        ]
    for f in files:
        if f.path.stem in ("migrate", "migrations") and not f.is_test:
            command = _command_for(f)
            if command:
                return [SetupStep("migrate", command, f"the migrate module {f.rel}")]
    sql_dir = _sql_dir(project_dir)
    if sql_dir:
        return [
            SetupStep(
                "schema",
                ["python", "-c", SQL_SNIPPET, sql_dir],
                f"{sql_dir}/*.sql",
                needs_dsn=True,
            )
        ]
    return []


def _command_for(f: PyFile) -> list[str] | None:
    if has_main_block(f.tree) is None:
        return None
    if f.in_package and f.module:
        return ["python", "-m", f.module]
    return ["python", f.rel]


def _sql_dir(project_dir: Path) -> str | None:
    for dirpath, dirnames, filenames in os.walk(project_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        here = Path(dirpath)
        if here.name in _SQL_DIRS and any(n.endswith(".sql") for n in filenames):
            return here.relative_to(project_dir).as_posix()
    return None


def histories(project_dir: Path) -> list[str]:
    globs: list[str] = []
    for dirpath, dirnames, filenames in os.walk(project_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        here = Path(dirpath)
        if here.name == "histories" and any(n.endswith(".json") for n in filenames):
            globs.append(f"{here.relative_to(project_dir).as_posix()}/*.json")
    return globs
