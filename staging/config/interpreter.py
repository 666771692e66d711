"""Which interpreter runs the app: `python` as a path, a venv dir, a name on PATH, or found.

`python = ""` means staging's own interpreter, unless the app dir holds a venv
(`.venv/` or `venv/`, the places uv, poetry and `python -m venv` put one): then the app
runs there, and the config line says so. A venv dir given as `python` means its
`bin/python`. `load_config` reports a value that names nothing; the draft (which must
never fail) only takes the answer when there is one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_VENVS = (".venv", "venv")


@dataclass(frozen=True)
class Interpreter:
    path: str | None  # None: the value names no executable interpreter
    found: str = ""  # how it was found, when the config did not name it ("the app's .venv")


def venv_python(directory: Path) -> Path | None:
    """The interpreter of a venv dir (POSIX or Windows layout), if it has one."""
    for candidate in (directory / "bin" / "python", directory / "Scripts" / "python.exe"):
        if _is_executable(candidate):
            return candidate
    return None


def resolve_interpreter(
    value: str, *, project_dir: Path, app_dir: Path, environ: Mapping[str, str]
) -> Interpreter:
    if not value:
        for name in APP_VENVS:
            found = venv_python(app_dir / name)
            if found is not None:
                return Interpreter(str(found.absolute()), f"the app's {name}/")
        return Interpreter(sys.executable)
    candidate = (project_dir / value).expanduser()
    if candidate.is_dir():
        found = venv_python(candidate)
        return Interpreter(str(found.absolute()) if found is not None else None)
    if os.sep in value or "/" in value:
        return Interpreter(str(candidate.absolute()) if _is_executable(candidate) else None)
    return Interpreter(shutil.which(value, path=environ.get("PATH", os.defpath)))


def interpreter_problem(python: str) -> str | None:
    """Why `python` does not run (a venv whose base interpreter is gone), or None."""
    try:
        done = subprocess.run(
            [python, "-I", "-S", "-c", "pass"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        return f"exit code {done.returncode}" + (f": {last}" if last else "")
    return None


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
