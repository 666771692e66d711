"""The state dir full, and `.staging` read-only or full: `environment.unwritable`, exit 2.

Each is a small tmpfs mounted for the case (root only; skipped otherwise): never a test
that fills the machine's real disk.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.faults.conftest import Case

pytestmark = [
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root"),
]


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _run(case: Case, fault: str, env: dict[str, str] | None = None) -> None:
    run = case.run(env=env).start()
    run.inject(lambda: None)  # the fault is in place before the run: time from its start
    code = run.finish()
    found = case.leftovers(run)
    case.record(fault, run, code, found)
    assert code == 2, run.output()
    assert run.failure_class() == "environment.unwritable", run.output()
    assert "free" in run.output()  # the free space where the write failed
    assert found == [], found


def test_state_dir_full(case: Case) -> None:
    with tmpfs(case.scratch / "full-state", "size=64k,mode=0755") as state:
        _run(case, "state dir full", env={"STAGING_STATE_DIR": str(state)})


def test_dot_staging_read_only(case: Case) -> None:
    with tmpfs(case.app / ".staging", "ro,size=64k"):
        _run(case, ".staging read-only")


def test_dot_staging_full(case: Case) -> None:
    with tmpfs(case.app / ".staging", "size=16k"):
        _run(case, ".staging full")
