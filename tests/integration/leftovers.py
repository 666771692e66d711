"""What a run may have left behind: processes and containers that belong to a run id."""

from __future__ import annotations

import os
from pathlib import Path


def processes_of(run_id: str) -> list[str]:
    """Processes whose command line or working directory mentions `run_id`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(f"/proc/{pid}/cwd")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (run_id in cmdline or run_id in cwd):
            found.append(f"{pid}: {cmdline[:160]} (cwd {cwd})")
    return found


def containers_of(run_id: str) -> list[str]:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
    except Exception:
        return []
    try:
        labelled = {"label": f"staging.run={run_id}"}
        return [c.name for c in client.containers.list(all=True, filters=labelled)]
    finally:
        client.close()
