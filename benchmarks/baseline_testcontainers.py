"""Baseline (a): what a team scripts without staging, with testcontainers.

    python benchmarks/baseline_testcontainers.py --app DIR [--migrate-in DIR] [--cap S]

A plain script, deliberately written the way a team would: testcontainers' Postgres module,
then a generic Temporal container waited on with its log message (`wait_for_logs`, library
defaults), sequentially; then the app's migration, worker and trigger by hand; then each
container's `.stop()`. Images: $STAGING_POSTGRES_IMAGE / $STAGING_TEMPORAL_IMAGE (offline
builds here; the official images elsewhere). Settings as in baseline_local.py. Prints one
JSON line of step timings. It imports nothing from staging.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from by_hand import run_app_by_hand  # sibling module: these scripts run by path
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs
from testcontainers.postgres import PostgresContainer

USER = DB = "everflow"
PG_IMAGE = os.environ.get("STAGING_POSTGRES_IMAGE", "postgres:16-alpine")
TEMPORAL_IMAGE = os.environ.get("STAGING_TEMPORAL_IMAGE", "temporalio/temporal:latest")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--app", type=Path, required=True)
    parser.add_argument("--migrate-in", type=Path, help="migrate from this tree (prod schema)")
    parser.add_argument("--cap", type=float, default=None, help="give up on the trigger after S")
    args = parser.parse_args()

    times: dict[str, object] = {}
    begin = time.monotonic()
    password = secrets.token_urlsafe(18)
    postgres = PostgresContainer(PG_IMAGE, username=USER, password=password, dbname=DB, driver=None)
    temporal = (
        DockerContainer(TEMPORAL_IMAGE)
        .with_command("server start-dev --ip 0.0.0.0 --namespace default --headless")
        .with_exposed_ports(7233)
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        postgres.start()
        times["postgres"] = time.monotonic() - begin
        temporal.start()
        wait_for_logs(temporal, "Temporal Server:")
        times["services"] = time.monotonic() - begin
        host = postgres.get_container_host_ip()
        public = {
            "DB_HOST": host,
            "DB_PORT": str(postgres.get_exposed_port(5432)),
            "DB_USER": USER,
            "DB_NAME": DB,
            "TEMPORAL_ADDRESS": f"{host}:{temporal.get_exposed_port(7233)}",
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
        temporal.stop()
        postgres.stop()
        times["stop"] = time.monotonic() - step
    print(json.dumps(times), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
