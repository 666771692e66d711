"""Put a rendered `[tool.staging]` into the app's pyproject.toml without disturbing it.

The user's bytes are kept exactly: the section is appended, the result must parse, and
the file is replaced atomically (same dir, same mode), so an interrupted init leaves
either the old file or the new one. An existing `[tool.staging]` is never touched.
"""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from pathlib import Path

from staging.errors import ConfigError

_CREATE_HEAD = (
    "# Created by `staging init --create`: only the staging section. Add [project] when the\n"
    "# app is packaged.\n"
)


def existing_section(pyproject: Path) -> bool:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    tool = data.get("tool")
    return isinstance(tool, dict) and "staging" in tool


def combined(original: str, section: str) -> str:
    sep = "" if not original or original.endswith("\n") else "\n"
    return original + sep + section


def check_parses(text: str, pyproject: Path) -> None:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{pyproject}: appending [tool.staging] would not give valid TOML",
            expected="a pyproject.toml that parses with the section appended",
            observed=str(exc),
            hint="the file defines `tool` in a way a [tool.staging] table cannot extend "
            "(an inline `tool = {...}`?); run `staging init --print` and paste it by hand",
        ) from exc


def append_section(pyproject: Path, section: str) -> None:
    pyproject = pyproject.resolve()  # a symlinked pyproject stays a symlink to the new text
    raw = pyproject.read_bytes()
    original = raw.decode("utf-8")
    text = combined(original, section)
    check_parses(text, pyproject)
    data = text.encode("utf-8")
    assert data.startswith(raw)  # never lose a byte of the user's file
    mode = stat.S_IMODE(pyproject.stat().st_mode)
    fd, tmp = tempfile.mkstemp(prefix=f".{pyproject.name}.", suffix=".tmp", dir=pyproject.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, pyproject)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create(pyproject: Path, section: str) -> None:
    text = _CREATE_HEAD + section
    check_parses(text, pyproject)
    # O_EXCL: a file that appeared meanwhile is the user's, never overwritten.
    fd = os.open(pyproject, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
