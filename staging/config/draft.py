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
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from staging.config.interpreter import resolve_interpreter

_TRUE = ("1", "true", "yes", "on", "t", "y")


@dataclass(frozen=True)
class PrestartDraft:
    python: str
    app_dir: Path
    preload: tuple[str, ...]


def draft_prestart(project: Path, environ: Mapping[str, str] | None = None) -> PrestartDraft | None:
    """The interpreter, app dir and preload list the validated config will most likely have."""
    environ = os.environ if environ is None else environ
    pyproject = project / "pyproject.toml" if project.is_dir() else project
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    table: Any = data.get("tool", {}).get("staging")
    if not isinstance(table, dict) or table.get("prestart", True) is not True:
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
    project_dir = pyproject.resolve().parent
    directory = (project_dir / app_dir).resolve()
    if not directory.is_dir():
        return None
    # The same resolution as `load_config`, without its errors.
    found = resolve_interpreter(python, project_dir=project_dir, app_dir=directory, environ=environ)
    if found.path is None:
        return None
    return PrestartDraft(found.path, directory, tuple(preload))
