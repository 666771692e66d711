"""Ownership of the app side of a run: its worker, triggers and workspace.

Services have their own records; the app's processes run in their own sessions (so a
stop reaches their children) and would outlive a SIGKILLed harness. They are recorded
like a process-backend run, under `<state>/<run-id>-app/`, with the workspace inside
it, so the next run's sweep (or `staging down --all`) stops and removes them too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from staging.process import ManagedProcess
from staging.services.state import (
    ProcIdentity,
    RunState,
    clear_detached,
    default_base_dir,
    mark_detached,
)

SUFFIX = "-app"


class AppRecord:
    def __init__(self, state: RunState) -> None:
        self._state = state
        self.dir = state.dir

    @classmethod
    def create(cls, run_id: str, base: Path | None = None) -> AppRecord:
        state = RunState(base or default_base_dir(), run_id + SUFFIX, backend="app")
        state.create()
        record = cls(state)
        # A path entry keeps the record alive while processes come and go.
        state.add_path(record.workspace_parent)
        return record

    @property
    def run_id(self) -> str:
        return self._state.run_id

    @property
    def workspace_parent(self) -> Path:
        path = self.dir / "workspace"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def track(self, proc: ManagedProcess, role: str) -> None:
        self.track_pid(proc.pid, role)

    def track_pid(self, pid: int, role: str) -> None:
        ident = ProcIdentity.of(pid)
        if ident is not None:
            self._state.add_proc(ident, role, stop_signal="SIGTERM")

    def untrack(self, proc: ManagedProcess) -> None:
        self.untrack_pid(proc.pid)

    def untrack_pid(self, pid: int) -> None:
        self._state.release(pid=pid)

    def detach(self) -> None:
        mark_detached(self.run_id, self._state.base)

    def close(self) -> None:
        """Forget everything: the last release removes the record's directory."""
        clear_detached(self.run_id, self._state.base)
        self._state.release(paths=[self.workspace_parent])
        shutil.rmtree(self.dir, ignore_errors=True)
