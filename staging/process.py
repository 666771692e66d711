"""App processes (setup steps, the worker, pipeline triggers) with redacted, kept output.

Output is read line by line on a thread, redacted, appended to the log file and kept
as a bounded tail for diagnoses, so a secret an app prints never reaches disk or the
console. Each process gets its own process group so a stop reaches its children too.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from staging.errors import StagingError
from staging.redact import Redactor
from staging.result import FailureClass

if TYPE_CHECKING:
    from staging.forkserver.client import ForkServer

_TAIL_LINES = 2000  # a sandbox traceback alone is ~250 lines


class Child(Protocol):
    """What is used of a `subprocess.Popen` (a forked command offers the same)."""

    @property
    def pid(self) -> int: ...
    @property
    def stdout(self) -> IO[bytes] | None: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...


class CommandNotStarted(StagingError):
    """The command could not be executed at all (ENOENT, EACCES): nothing of the app ran."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        exc: OSError,
        failure_class: FailureClass = FailureClass.SETUP_FAILED,
    ) -> None:
        self.name, self.command, self.error = name, list(command), exc
        shown = " ".join(command)
        why = exc.strerror or type(exc).__name__
        super().__init__(
            f"{name}: the command `{shown}` could not be started: {why}",
            expected=f"{command[0] if command else '(empty)'} to exist and be executable",
            observed=f"{type(exc).__name__} [errno {exc.errno}] {why}: {exc.filename or shown}",
            hint='check the command in [tool.staging] (a leading "python" is the configured '
            "interpreter; other programs must be on the app's PATH or given by path) and that "
            "the file is executable",
            failure_class=failure_class,
        )

    def as_class(self, failure_class: FailureClass) -> CommandNotStarted:
        return CommandNotStarted(self.name, self.command, self.error, failure_class)


class ManagedProcess:
    def __init__(
        self,
        popen: Child,
        name: str,
        log_path: Path,
        redactor: Redactor,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._popen = popen
        self._redactor = redactor
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._lock = threading.Lock()
        self.log_error: str | None = None  # why the log on disk is incomplete, if it is
        self._reader = threading.Thread(target=self._pump, name=f"log-{name}", daemon=True)
        self._reader.start()
        self.forked = not isinstance(popen, subprocess.Popen)

    @classmethod
    def start(
        cls,
        name: str,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        redactor: Redactor,
        forkserver: ForkServer | None = None,
    ) -> ManagedProcess:
        """Forked from `forkserver` when it accepts the command, else a new process."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if forkserver is not None:
            from staging.forkserver.client import try_fork

            forked = try_fork(forkserver, command, cwd=cwd, env=env, merge_stderr=True)
            if forked is not None:
                return cls(forked, name, log_path, redactor)
        try:
            popen = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise CommandNotStarted(name, command, exc) from exc
        return cls(popen, name, log_path, redactor)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def _pump(self) -> None:
        """Read until EOF, whatever happens to the log: an undrained pipe blocks the app."""
        assert self._popen.stdout is not None
        log: IO[str] | None = None
        try:
            log = self.log_path.open("a", encoding="utf-8")
        except OSError as exc:
            self.log_error = f"{self.log_path}: {exc.strerror or exc}"
        for raw in iter(self._popen.stdout.readline, b""):
            line = self._redactor.text(raw.decode("utf-8", errors="replace").rstrip("\n"))
            with self._lock:
                self._tail.append(line)
            if log is not None:
                try:
                    log.write(line + "\n")
                    log.flush()
                except OSError as exc:  # a full disk: keep the tail, say the log is cut
                    self.log_error = f"{self.log_path}: {exc.strerror or exc}"
                    log = None
        self._popen.stdout.close()

    def alive(self) -> bool:
        return self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for exit (and for its output to be read); None if still running."""
        try:
            code = self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(timeout=5)
        return code

    def output(self, lines: int = 60) -> str:
        with self._lock:
            tail = list(self._tail)
        return "\n".join(tail[-lines:])

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds. Idempotent."""
        if self.alive():
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
        # The group may hold children that outlived the leader.
        self._signal(signal.SIGKILL)
        return self.wait(timeout=5)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)
