"""Fixtures of the fault matrix: a backend, a state dir shared per backend, a fresh app."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.corpus import materialize
from tests.faults.harness import FaultRun, fault_env, leftovers, record, sweep_like_the_next_run

BACKENDS = [
    pytest.param("process", marks=pytest.mark.process),
    pytest.param("docker", marks=pytest.mark.docker),
]


@pytest.fixture(scope="session")
def state_dirs() -> Iterator[dict[str, Path]]:
    """One state dir per backend for the whole matrix: the Postgres mirror and template
    are built once, not per case. Short, for Postgres' Unix socket path."""
    root = Path(tempfile.mkdtemp(prefix="sf-", dir="/tmp"))
    root.chmod(0o755)  # the process backend's Postgres runs as `nobody` when we are root
    dirs = {"process": root / "p", "docker": root / "d", "root": root}
    yield dirs
    for backend, path in dirs.items():
        if backend != "root" and path.exists():
            sweep_like_the_next_run(backend, path, root)
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Case:
    backend: str
    app: Path
    state_dir: Path
    tmp_dir: Path
    scratch: Path  # searchable by `nobody` (the process backend's Postgres), unlike tmp_path

    def run(self, *extra: str, env: dict[str, str] | None = None) -> FaultRun:
        return FaultRun(self.app, self.backend, fault_env(self.state_dir, self.tmp_dir, env))

    def leftovers(self, run: FaultRun) -> list[str]:
        return leftovers(
            run.run_id(), state_dir=self.state_dir, tmp_dir=self.tmp_dir, ports=run.ports
        )

    def record(
        self,
        fault: str,
        run: FaultRun,
        code: int,
        found: list[str],
        klass: str | None = None,
        **more: object,
    ) -> None:
        record(
            self.backend,
            fault,
            {
                "class": klass or run.failure_class() or "-",
                "exit": code,
                "seconds": run.seconds,
                "exit_seconds": run.exit_seconds,
                "leftovers": len(found),
                "left": found[:3],
                **more,
            },
        )


@pytest.fixture(params=BACKENDS)
def case(request: pytest.FixtureRequest, tmp_path: Path, state_dirs: dict[str, Path]) -> Case:
    backend: str = request.param
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    app = materialize("slow-but-fine", tmp_path / "app")
    scratch = Path(tempfile.mkdtemp(dir=state_dirs["root"]))
    scratch.chmod(0o755)
    return Case(backend, app, state_dirs[backend], tmp_dir, scratch)
