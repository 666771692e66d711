"""The environment the app's processes run in: the bare minimum, plus what delivery says.

A developer's shell usually exports the very variables the app reads (DB_PASSWORD,
DATABASE_URL, TEMPORAL_ADDRESS...). Passing them through would let an app with a broken
settings loader pass staging and fail in production, so nothing is inherited except
what a process needs to run at all: PATH, HOME, locale, TZ, TMPDIR and the venv.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from staging.errors import ConfigError

# Directories a minimal PATH may keep from the caller's PATH (in the caller's order).
SYSTEM_PATH_DIRS = (
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/opt/homebrew/bin",
    "/opt/homebrew/sbin",
    "/run/current-system/sw/bin",
)
FALLBACK_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
PASSTHROUGH = ("HOME", "LANG", "LANGUAGE", "LC_ALL", "TZ", "TMPDIR")
_PYTHON_NAMES = ("python", "python3")


def hermetic_env(
    python: str,
    *,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
    python_path: Sequence[Path] = (),
) -> dict[str, str]:
    """PATH (interpreter's bin dir first), HOME, locale, TZ, TMPDIR, VIRTUAL_ENV + `extra`.

    `python_path` (the workspace's import roots, then staging's start-up hook) becomes
    PYTHONPATH, ahead of any PYTHONPATH in `extra` (a `[tool.staging.process_env]` one).
    """
    base = os.environ if base is None else base
    # Not resolved: a venv's bin/python is a symlink to the base interpreter, and the
    # venv's bin dir (with its console scripts) is the one the app needs.
    bin_dir = str(Path(python).absolute().parent)
    caller = [d for d in base.get("PATH", "").split(os.pathsep) if d]
    system = [d for d in caller if d.rstrip("/") in SYSTEM_PATH_DIRS] or list(FALLBACK_PATH)
    path = [bin_dir, *(d for d in dict.fromkeys(system) if d != bin_dir)]

    env = {"PATH": os.pathsep.join(path)}
    env.update({k: base[k] for k in PASSTHROUGH if k in base})
    env.update({k: v for k, v in base.items() if k.startswith("LC_")})
    venv = _venv_of(python)
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    if python_path:
        own = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in python_path), *own])
    return env


def _venv_of(python: str) -> Path | None:
    root = Path(python).absolute().parent.parent
    return root if (root / "pyvenv.cfg").is_file() else None


def resolve_command(command: list[str], python: str) -> list[str]:
    """A leading "python"/"python3" means the configured interpreter."""
    if not command:
        raise ConfigError(
            "an empty command was given",
            expected='a command list such as ["python", "-m", "yourapp.worker"]',
            observed="[]",
            hint="give the command as a non-empty TOML list of strings",
        )
    if command[0] in _PYTHON_NAMES:
        return [python, *command[1:]]
    return list(command)
