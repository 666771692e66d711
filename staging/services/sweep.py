"""Remove what runs of the process backend left behind when their owner died.

A run is swept when its owner record says this host, and its owner process is gone (or
was replaced by another process with the same pid). Detached runs (`staging up --detach`)
are skipped unless asked for. A process is only signalled while it is still the very
process that was recorded (pid *and* start time), so a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Collection
from pathlib import Path

from staging.services.state import (
    OWNER_FILE,
    OwnerRecord,
    ProcIdentity,
    clear_detached,
    detached_runs,
    live_pids,
    locked,
    read_record,
)

_CLAIM_PREFIX = ".swept-"
_POLL = 0.01


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_gone(ident: ProcIdentity, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while ident.alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def terminate(
    ident: ProcIdentity, first: signal.Signals = signal.SIGKILL, grace: float = 2.0
) -> bool:
    """Stop the process group led by `ident` if it still is that process; True if it was.

    `first` lets Postgres shut down "immediately" (SIGQUIT: no checkpoint, but it stops its
    children and removes its shared memory); SIGKILL follows after `grace`.
    """
    if ident.reused():
        return False
    was_alive = ident.alive()
    if was_alive:
        children = [
            ProcIdentity(pid, info.start, info.comm)
            for pid, info in live_pids()
            if info.ppid == ident.pid
        ]
        if first == signal.SIGKILL:
            _signal_group(ident.pid, signal.SIGKILL)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(ident.pid, first)
        if not _wait_gone(ident, 0.0 if first == signal.SIGKILL else grace):
            _signal_group(ident.pid, signal.SIGKILL)
        # Postgres backends lead their own process groups; a SIGKILLed postmaster leaves them.
        for child in children:
            if child.alive():
                _signal_group(child.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child.pid, signal.SIGKILL)
    # While any member of the group lives, the kernel cannot hand its pgid to a new process,
    # so members of a group whose leader is gone are still ours.
    for pid, info in live_pids():
        if info.pgrp == ident.pid and pid != ident.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            was_alive = True
    _wait_gone(ident, 1.0)
    return was_alive


def _claim_owner_dead(name: str) -> bool:
    """A claimed dir whose sweeper died mid-way may be claimed again."""
    pid = name.rpartition("-")[2]
    return not (pid.isdigit() and Path(f"/proc/{pid}").exists())


def sweep(
    base: Path,
    *,
    include_detached: bool = False,
    run_ids: Collection[str] | None = None,
    force: bool = False,
) -> list[str]:
    """Stop and remove leftovers under `base`; return one line per run removed.

    `force` ignores the owner's liveness (explicit `staging down` of a given run id).
    """
    if not base.is_dir():
        return []
    host = socket.gethostname()
    detached = detached_runs(base)
    claimed: list[tuple[OwnerRecord, Path]] = []
    with locked(base):
        for entry in sorted(base.iterdir()):
            if not entry.is_dir() or entry.is_symlink():
                continue
            if entry.name.startswith(".") and not (
                entry.name.startswith(_CLAIM_PREFIX) and _claim_owner_dead(entry.name)
            ):
                continue
            record = read_record(entry)
            if record is None or record.host != host:
                continue
            if run_ids is not None and record.run_id not in run_ids:
                continue
            if not force and (
                record.owner_alive() or (record.run_id in detached and not include_detached)
            ):
                continue
            target = base / f"{_CLAIM_PREFIX}{record.run_id}-{os.getpid()}"
            try:
                os.rename(entry, target)
            except OSError:
                continue
            claimed.append((record, target))
    return [_remove(base, record, target) for record, target in claimed]


def _remove(base: Path, record: OwnerRecord, claimed_dir: Path) -> str:
    stopped: list[str] = []
    for proc in record.procs:
        ident = ProcIdentity(int(proc["pid"]), int(proc["start"]), str(proc.get("name", "")))
        sig = signal.Signals[str(proc.get("signal", "SIGKILL"))]
        if terminate(ident, sig):
            stopped.append(f"{proc.get('service', ident.name)} (pid {ident.pid})")
    stopped += _stop_strays_in(claimed_dir)
    original = base / record.run_id
    for raw in record.paths:
        path = Path(raw)
        # Only ever delete inside our own state dir, whatever a (tampered) record says.
        if path.is_relative_to(original):
            continue  # moved along with the run dir
        if path.resolve().is_relative_to(base.resolve()) and path.exists():
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(claimed_dir, ignore_errors=True)
    clear_detached(record.run_id, base)
    what = ", ".join(stopped) if stopped else "no live processes"
    return f"run {record.run_id} of {record.owner}: stopped {what}; removed {original}"


def _stop_strays_in(claimed_dir: Path) -> list[str]:
    """Kill processes still working inside a dead run's dir (its workspace).

    The records miss a process forked in the instant before the harness was SIGKILLed
    (a probe or a command forked from the app's interpreter started ahead, in its own
    session, orphaned once the fork server exits); its working directory is still the
    run's workspace, which nothing else uses, so it is ours to stop.
    """
    root = str(claimed_dir.resolve())
    stopped: list[str] = []
    killed: list[ProcIdentity] = []
    for pid, info in live_pids():
        if pid == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            _signal_group(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.append(ProcIdentity(pid, info.start, info.comm))
            stopped.append(f"a stray process in the run's workspace (pid {pid})")
    # SIGKILL is delivered at once but exiting takes a moment (a large process releases its
    # memory first): the sweep is done when they are gone, not when they were signalled.
    for ident in killed:
        _wait_gone(ident, 2.0)
    return stopped


__all__ = ["OWNER_FILE", "sweep", "terminate"]
