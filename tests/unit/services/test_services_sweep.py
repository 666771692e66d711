"""Sweep logic against fake owner records and harmless `sleep` processes (no services)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from staging.services.state import (
    OwnerRecord,
    ProcIdentity,
    RunState,
    boot_id,
    mark_detached,
    read_record,
    write_record,
)
from staging.services.sweep import sweep

Procs = list[subprocess.Popen[bytes]]


@pytest.fixture
def spawn() -> Iterator[Procs]:
    procs: Procs = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _sleeper(procs: Procs) -> ProcIdentity:
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    procs.append(proc)
    ident = ProcIdentity.of(proc.pid)
    assert ident is not None
    return ident


def _dead_owner(procs: Procs) -> ProcIdentity:
    ident = _sleeper(procs)
    procs[-1].kill()
    procs[-1].wait()
    return ident


def _record(
    base: Path,
    run_id: str,
    owner: ProcIdentity,
    procs: Sequence[ProcIdentity] = (),
    host: str | None = None,
    extra_paths: Sequence[Path] = (),
) -> Path:
    run_dir = base / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "data").mkdir()
    host = host or socket.gethostname()
    record = OwnerRecord(
        run_id=run_id,
        owner=f"{host}:{owner.pid}",
        host=host,
        pid=owner.pid,
        pid_start=owner.start,
        boot_id=boot_id(),
        procs=[{"pid": p.pid, "start": p.start, "name": p.name, "service": "x"} for p in procs],
        paths=[str(run_dir / "data"), *(str(p) for p in extra_paths)],
    )
    write_record(run_dir, record)
    return run_dir


def test_dead_owner_leftovers_are_killed_and_removed(tmp_path: Path, spawn: Procs) -> None:
    leftover = _sleeper(spawn)
    run_dir = _record(tmp_path, "dead", _dead_owner(spawn), [leftover])
    removed = sweep(tmp_path)
    assert len(removed) == 1 and "dead" in removed[0] and f"pid {leftover.pid}" in removed[0]
    assert not leftover.alive()
    assert not run_dir.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_live_owner_is_never_touched(tmp_path: Path, spawn: Procs) -> None:
    leftover = _sleeper(spawn)
    me = ProcIdentity.of(os.getpid())
    assert me is not None
    run_dir = _record(tmp_path, "live", me, [leftover])
    assert sweep(tmp_path) == []
    assert leftover.alive() and run_dir.exists()


def test_recycled_pid_is_not_killed(tmp_path: Path, spawn: Procs) -> None:
    stranger = _sleeper(spawn)
    # Same pid, different start time: the recorded process is gone and the pid reused.
    recorded = ProcIdentity(stranger.pid, stranger.start - 1, "postgres")
    run_dir = _record(tmp_path, "reused", _dead_owner(spawn), [recorded])
    removed = sweep(tmp_path)
    assert "no live processes" in removed[0]
    assert stranger.alive()
    assert not run_dir.exists()


def test_detached_runs_are_kept_unless_asked(tmp_path: Path, spawn: Procs) -> None:
    leftover = _sleeper(spawn)
    run_dir = _record(tmp_path, "detached-run", _dead_owner(spawn), [leftover])
    mark_detached("detached-run", tmp_path)
    assert sweep(tmp_path) == []
    assert leftover.alive()
    assert len(sweep(tmp_path, include_detached=True)) == 1
    assert not leftover.alive() and not run_dir.exists()
    assert not (tmp_path / ".detached" / "detached-run").exists()


def test_other_hosts_are_never_touched(tmp_path: Path, spawn: Procs) -> None:
    run_dir = _record(tmp_path, "elsewhere", _dead_owner(spawn), host="another-host")
    assert sweep(tmp_path) == []
    assert run_dir.exists()


def test_force_stops_one_named_live_run_only(tmp_path: Path, spawn: Procs) -> None:
    me = ProcIdentity.of(os.getpid())
    assert me is not None
    a, b = _sleeper(spawn), _sleeper(spawn)
    _record(tmp_path, "run-a", me, [a])
    run_b = _record(tmp_path, "run-b", me, [b])
    assert len(sweep(tmp_path, run_ids={"run-a"}, force=True)) == 1
    assert not a.alive() and b.alive() and run_b.exists()


def test_recorded_paths_outside_the_state_dir_are_not_deleted(tmp_path: Path, spawn: Procs) -> None:
    base, outside = tmp_path / "base", tmp_path / "precious"
    outside.mkdir()
    _record(base, "tampered", _dead_owner(spawn), extra_paths=[outside])
    assert len(sweep(base)) == 1
    assert outside.exists()


def test_group_members_of_a_dead_leader_are_killed(tmp_path: Path, spawn: Procs) -> None:
    # A leader that forks a child into its group and exits: only the child is left.
    script = "sleep 300 & echo $!"
    leader = subprocess.Popen(["sh", "-c", script], start_new_session=True, stdout=subprocess.PIPE)
    ident = ProcIdentity.of(leader.pid)
    assert ident is not None and leader.stdout is not None
    child_pid = int(leader.stdout.readline())
    leader.wait()
    child = ProcIdentity.of(child_pid)
    assert child is not None and child.alive()
    try:
        _record(tmp_path, "orphaned-group", _dead_owner(spawn), [ident])
        sweep(tmp_path)
        assert not child.alive()
    finally:
        if child.alive():
            os.kill(child_pid, signal.SIGKILL)


def test_run_state_removes_its_dir_on_last_release(tmp_path: Path) -> None:
    state = RunState(tmp_path, "r1")
    state.create()
    me = ProcIdentity.of(os.getpid())
    assert me is not None
    state.add_path(state.dir / "log")
    state.add_proc(me, "svc")
    record = read_record(state.dir)
    assert record is not None and record.pids == [os.getpid()]
    state.release(pid=os.getpid())
    assert state.dir.exists()
    state.release(paths=[state.dir / "log"])
    assert not state.dir.exists()
    # A late release (after a sweep claimed the run) must not resurrect the directory.
    state.release(pid=1)
    assert not state.dir.exists()


def test_owner_record_json_round_trip() -> None:
    record = OwnerRecord("r", "h:1", "h", 1, 2, "boot", procs=[{"pid": 3, "start": 4}])
    again = OwnerRecord.from_json(record.to_json())
    assert again == record
    assert '"pids": [\n    3\n  ]' in record.to_json()


@pytest.mark.parametrize("bad", ["../x", "", "a/b", ".hidden", "x" * 65])
def test_unsafe_run_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        RunState(tmp_path, bad)


def test_a_stray_process_working_in_a_dead_runs_dir_is_stopped(tmp_path: Path) -> None:
    """A process forked just before the harness was SIGKILLed is in no record; its working
    directory (the run's workspace) still names it as the run's. Others are left alone."""
    import subprocess
    import sys

    from staging.services.sweep import _stop_strays_in

    claimed = tmp_path / ".swept-run-1" / "workspace" / "app"
    claimed.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    stray = subprocess.Popen(sleeper, cwd=claimed, start_new_session=True)
    other = subprocess.Popen(sleeper, cwd=elsewhere, start_new_session=True)
    try:
        stopped = _stop_strays_in(tmp_path / ".swept-run-1")
        assert stray.wait(timeout=10) == -9
        assert other.poll() is None
        assert stopped == [f"a stray process in the run's workspace (pid {stray.pid})"]
    finally:
        for proc in (stray, other):
            proc.kill()
            proc.wait()
