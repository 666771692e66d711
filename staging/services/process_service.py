"""What every process-backend service shares: its own session, a log file in the run's dir,
an owner record (pid + start time) a later sweep can act on, and an idempotent stop.

The services (`process_postgres`, `process_temporal`, `generic_process`) subclass
`ProcessService`; they reach the backend only through `ProcessHost`, so none of them imports
`process_backend`, which imports them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Protocol

from staging.errors import ServiceUnavailable
from staging.services.base import ServiceSpec
from staging.services.disk import writing
from staging.services.process_identity import PortIdentity
from staging.services.state import ProcIdentity, RunState
from staging.services.sweep import terminate


class ProcessHost(Protocol):
    """What a service asks of the process backend (`ProcessBackend` is the one)."""

    base_dir: Path
    ui: bool
    run_as: RunAs | None

    def free_port(self) -> int: ...

    def temporal_binary(self) -> Path | None: ...

    def postgres_bin_dir(self) -> Path | None: ...


_LOG_LIMIT = 256 * 1024


def base_env() -> dict[str, str]:
    # Never hand the harness's environment (PG*, TEMPORAL_*, app secrets) to the services.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}


class RunAs:
    """The unprivileged account Postgres runs as when the harness is root."""

    def __init__(self, name: str = "nobody") -> None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError as exc:
            raise ServiceUnavailable(
                f"Postgres refuses to run as root and the user {name!r} does not exist",
                expected=f"a system user {name!r} to run Postgres as",
                observed="no such user",
                hint=f"create it (useradd --system {name}) or run staging as a non-root user",
            ) from exc
        self.name, self.uid, self.gid = name, entry.pw_uid, entry.pw_gid

    def chown(self, *paths: Path) -> None:
        for path in paths:
            os.chown(path, self.uid, self.gid)


class ProcessService(PortIdentity):
    """Spawn in its own session, log to a file, record the pid, stop idempotently."""

    name = "service"
    stop_signal = signal.SIGKILL

    def __init__(self, backend: ProcessHost, spec: ServiceSpec) -> None:
        self._backend, self._spec = backend, spec
        self._state = RunState(backend.base_dir, spec.run_id)
        self._log_path = self._state.dir / f"{self.name}.log"
        self._paths: list[Path] = [self._log_path]
        self._lock = threading.RLock()  # stop() may come from a signal handler
        self._proc: subprocess.Popen[bytes] | None = None
        self._ident: ProcIdentity | None = None
        self._helper: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._final_log: str | None = None
        self._version: str | None = None
        self._port = 0
        self._forced = False  # the port came from STAGING_TEST_<NAME>_PORT: never traded
        self._clash: str | None = None  # a foreign listener seen on our port

    def start(self) -> None:
        # Under the lock: a concurrent stop() either sees nothing or everything we created.
        with self._lock, writing(self._state.dir, f"the {self.name} run dir"):
            self._check_running()
            self._refuse_a_taken_forced_port()
            self._state.create()
            for path in self._paths:
                self._state.add_path(path)
            self._log_path.touch(mode=0o600)
            self._on_start()

    def _on_start(self) -> None:
        pass

    def _check_running(self) -> None:
        if self._stopped:
            raise ServiceUnavailable(
                f"{self.name} was stopped while starting",
                hint="another service of this run failed or the run was interrupted: see it",
            )

    def _popen(
        self,
        argv: list[str],
        run_as: RunAs | None,
        env: dict[str, str],
        *,
        session: bool = False,
        cwd: Path | None = None,
        stdin: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        self._check_running()
        with open(self._log_path, "ab") as log, open(stdin or os.devnull, "rb") as stdin_file:
            return subprocess.Popen(
                argv,
                stdin=stdin_file,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=session,
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
            )

    def _spawn(self, argv: list[str], env: dict[str, str], run_as: RunAs | None = None) -> None:
        with self._lock, writing(self._state.dir, "the run's owner record"):
            if self._proc is not None and self._ident is not None:  # a retry after a port clash
                terminate(self._ident)
                self._proc.wait()
                self._state.release(pid=self._ident.pid)
            self._proc = self._popen(argv, run_as, env, session=True, cwd=self._state.dir)
            self._ident = ProcIdentity.of(self._proc.pid) or ProcIdentity(self._proc.pid, -1)
            self._state.add_proc(self._ident, self.name, self.stop_signal.name)

    def run_helper(
        self,
        argv: list[str],
        deadline: float,
        run_as: RunAs | None = None,
        stdin: Path | None = None,
        where: Path | None = None,
    ) -> None:
        """A short-lived command (initdb, cp); stop() kills it, its failure is ours.

        `where` is what it writes: a full disk or a read-only mount there is named as such.
        """
        with self._lock:
            self._helper = self._popen(argv, run_as, base_env(), stdin=stdin)
        try:
            self._helper.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._helper.kill()
            self._helper.wait()
        if self._helper.returncode != 0:
            self._raise_if_unwritable(f"{Path(argv[0]).name} output", where)
            raise ServiceUnavailable(
                f"{self.name}: {Path(argv[0]).name} failed",
                expected="exit code 0",
                observed=f"exit code {self._helper.returncode}"
                + (" (stopped while starting)" if self._stopped else ""),
                evidence=[f"{self.name} log tail:\n{self.log_tail()}"],
                hint="read the log tail; a full disk or an unusable state dir shows there "
                f"({self._backend.base_dir}; STAGING_STATE_DIR moves it)",
            )

    def _exit_reason(self) -> str | None:
        if self._stopped:
            return f"{self.name} was stopped"
        if self._proc is not None and self._proc.poll() is not None:
            return f"{self.name} exited with code {self._proc.returncode}"
        return None

    def _free_port(self) -> int:
        # Through the backend: a substitute set on `process_backend.free_port` (the tests'
        # port clash) reaches every service.
        return self._backend.free_port()

    def alive(self) -> bool:
        """Cheap liveness: our process is still running (not exited, not a zombie)."""
        with self._lock:
            proc, ident, stopped = self._proc, self._ident, self._stopped
        if stopped or proc is None or ident is None:
            return False
        return proc.poll() is None and ident.alive()

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            helper, proc, ident = self._helper, self._proc, self._ident
        if helper is not None and helper.poll() is None:
            helper.kill()
            helper.wait()
        if proc is not None and ident is not None:
            terminate(ident, self.stop_signal)
            proc.wait()
        self._final_log = self._read_log()
        for path in self._paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        # A full disk must not fail the stop: a record left stale names a dead process, which
        # the next sweep recognises (pid + start time) and removes with the paths.
        with contextlib.suppress(OSError):
            self._state.release(pid=ident.pid if ident else None, paths=self._paths)

    def _read_log(self) -> str:
        try:
            with open(self._log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - _LOG_LIMIT))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def full_log(self) -> str:
        """The whole log (its last 256 KiB), also after stop() removed the file."""
        return self._final_log if self._final_log is not None else self._read_log()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.full_log().splitlines()[-lines:])

    @staticmethod
    def _remaining(deadline: float) -> float:
        return max(0.0, deadline - time.monotonic())
