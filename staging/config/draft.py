"""A first look at `[tool.staging]`, before validation: enough to start the app's interpreter.

Validating the config imports pydantic (about half a second of CPU); the app's
interpreter, started ahead as the fork server, needs longer than that to preload its
libraries, so the config phase starts it from this draft first. The draft is only a
guess: `load_config` stays the one authority (errors, provenance, every other key), and
the config phase replaces a server whose draft validation contradicts. Whatever is
unclear here gives no draft — a run without a head start, never an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from staging.config.interpreter import resolve_interpreter
from staging.config.table import StagingTable, read_staging_table
from staging.errors import ConfigError

_TRUE = ("1", "true", "yes", "on", "t", "y")


@dataclass(frozen=True)
class PrestartDraft:
    python: str
    app_dir: Path
    preload: tuple[str, ...]


def draft_prestart(
    project: Path | StagingTable, environ: Mapping[str, str] | None = None
) -> PrestartDraft | None:
    """The interpreter, app dir and preload list the validated config will most likely have.

    `project` may be the table already read (`read_staging_table`), which `load_config`
    then validates."""
    environ = os.environ if environ is None else environ
    try:
        read = read_staging_table(project)
    except ConfigError:  # load_config meets the same error and reports it
        return None
    table = read.table
    if table.get("prestart", True) is not True:
        return None
    if environ.get("STAGING_PRESTART", "true").strip().lower() not in _TRUE:
        return None
    python = environ.get("STAGING_PYTHON", table.get("python", ""))
    app_dir = environ.get("STAGING_APP_DIR", table.get("app_dir", "."))
    preload = table.get("preload", [])
    if not (isinstance(python, str) and isinstance(app_dir, str) and isinstance(preload, list)):
        return None
    if not all(isinstance(name, str) for name in preload):
        return None
    project_dir = read.project_dir
    directory = (project_dir / app_dir).resolve()
    if not directory.is_dir():
        return None
    # The same resolution as `load_config`, without its errors.
    found = resolve_interpreter(python, project_dir=project_dir, app_dir=directory, environ=environ)
    if found.path is None:
        return None
    return PrestartDraft(found.path, directory, tuple(preload))
