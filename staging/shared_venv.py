"""Whether the app runs in staging's own environment, and what of staging's it can then see.

An app that shares staging's venv imports staging's dependencies (rich, psycopg, docker,
testcontainers, its pydantic-settings and temporalio versions) as if they were its own:
a missing requirement or a pin the app does not have in production goes unnoticed. The
config line of a run and `staging doctor` say so, naming those packages.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class SharedVenv:
    prefix: str
    packages: tuple[str, ...]  # "rich 13.9.4", staging's own requirements the app can import

    def describe(self) -> str:
        return (
            f"the app runs in staging's own environment ({self.prefix}): it can import "
            f"staging's packages too ({', '.join(self.packages) or 'none'}), which production "
            "may not have or pin differently"
        )

    @property
    def hint(self) -> str:
        return (
            "give the app its own venv with its own requirements (python -m venv .venv && "
            ".venv/bin/pip install -r requirements.txt): staging uses an app dir's .venv/ "
            "by itself, or set [tool.staging] python"
        )


def _environment_of(python: str) -> str:
    """The venv root of an interpreter path (unresolved: a venv's python is a symlink)."""
    path = Path(python).absolute()
    root = path.parent.parent
    if (root / "pyvenv.cfg").is_file():
        return str(root)
    return os.path.realpath(path)


def shared_venv(python: str) -> SharedVenv | None:
    """None when `python` is not the interpreter environment staging itself runs in."""
    if _environment_of(python) != _environment_of(sys.executable):
        return None
    return SharedVenv(sys.prefix, tuple(staging_packages()))


def staging_packages() -> list[str]:
    """staging's direct requirements installed here, with versions ("rich 13.9.4")."""
    try:
        requires = metadata.requires("staging") or []
    except metadata.PackageNotFoundError:
        return []
    names = []
    for requirement in requires:
        if "extra ==" in requirement:
            continue
        match = re.match(r"[A-Za-z0-9_.-]+", requirement)
        if match is None:
            continue
        try:
            names.append(f"{match.group(0)} {metadata.version(match.group(0))}")
        except metadata.PackageNotFoundError:
            continue
    return sorted(dict.fromkeys(names))
