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
import shutil
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    resolved = _python(python, project_dir, environ)
    directory = (project_dir / app_dir).resolve()
    if resolved is None or not directory.is_dir():
        return None
    return PrestartDraft(resolved, directory, tuple(preload))


def _python(value: str, project_dir: Path, environ: Mapping[str, str]) -> str | None:
    # The same resolution as `load_config`, without its errors.
    if not value:
        return sys.executable
    if "/" in value or os.sep in value:
        candidate = (project_dir / value).expanduser()
        return str(candidate.absolute()) if os.access(candidate, os.X_OK) else None
    return shutil.which(value, path=environ.get("PATH", os.defpath))
