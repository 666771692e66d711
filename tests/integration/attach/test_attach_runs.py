"""`backend = "attach"` end to end: real `staging run`s against a cluster they did not start.

The cluster (a Temporal dev server and a Postgres server, `cluster.py`) is shared by every
test here; the app (`app/tally.py`) reads its task queue from a setting. Cost: the cluster
starts once (~3 s); the 8 concurrent runs take ~20 s on 2 cores, the others ~4 s each.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from staging.services.attach.pg import run_name
from tests.integration.attach.cluster import ADMIN_PASSWORD, SHARED_NAMESPACE, Cluster
from tests.integration.attach.conftest import make_project, staging_run

pytestmark = [pytest.mark.process, pytest.mark.slow]

RUNS = 8


def _run_ids(project: Path) -> list[str]:
    return sorted(p.name for p in (project / ".staging" / "runs").iterdir())


def _verdict(project: Path, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (project / ".staging" / "runs" / run_id / "verdict.json").read_text()
    )
    return data


async def _workflows(cluster: Cluster, query: str, namespace: str = SHARED_NAMESPACE) -> list[Any]:
    client: Any = await cluster.client(namespace)
    return [w async for w in client.list_workflows(query)]


async def _registered(cluster: Cluster) -> list[str]:
    """The namespaces registered on the cluster (not deleted, not being deleted)."""
    from temporalio.api.enums.v1 import NamespaceState
    from temporalio.api.workflowservice.v1 import ListNamespacesRequest

    client: Any = await cluster.client()
    page = await client.workflow_service.list_namespaces(ListNamespacesRequest(page_size=200))
    return [
        n.namespace_info.name
        for n in page.namespaces
        if n.namespace_info.state == NamespaceState.NAMESPACE_STATE_REGISTERED
    ]


def _leftovers(cluster: Cluster, run_ids: list[str]) -> list[str]:
    """Databases and roles of these runs still on the server."""
    names = {run_name("tally", r) for r in run_ids}
    with cluster.admin() as conn:  # type: ignore[attr-defined]
        dbs = [r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()]
        roles = [r[0] for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()]
    return sorted({*dbs, *roles} & names)


def test_eight_concurrent_runs_are_green_isolated_and_leave_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    projects = [make_project(cluster, tmp_path / f"app{i}") for i in range(RUNS)]
    procs = [staging_run(p, cluster, "--pipeline", "tally") for p in projects]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out[-4000:]
    run_ids = [_run_ids(p)[0] for p in projects]
    assert len(set(run_ids)) == RUNS

    async def check() -> None:
        client: Any = await cluster.client()
        for run_id in run_ids:
            queue = f"tally-{run_id}"
            mine = await _workflows(cluster, f"TaskQueue = '{queue}'")
            assert [w.workflow_type for w in mine] == ["Tally"], (run_id, mine)
            # The activity ran in this run's worker, wrote into this run's database, and
            # found its row alone there: no task and no row crossed runs.
            result = await client.get_workflow_handle(mine[0].id).result()
            assert result == f"{run_name('tally', run_id)}|{queue}|1", result
        running = await _workflows(cluster, "ExecutionStatus = 'Running'")
        assert not [w.id for w in running if w.task_queue.startswith("tally-")]

    asyncio.run(check())
    assert _leftovers(cluster, run_ids) == []
    for out in outputs:
        assert ADMIN_PASSWORD not in out


def _wait_for_hold(cluster: Cluster, deadline: float) -> Any:
    """The first running `Hold` workflow (the killed run's pipeline), polled until it shows."""

    async def find() -> Any:
        while True:
            found = await _workflows(
                cluster, "ExecutionStatus = 'Running' AND WorkflowType = 'Hold'"
            )
            if found:
                return found[0]
            assert time.monotonic() < deadline, "the held run never started its workflow"
            await asyncio.sleep(0.1)

    return asyncio.run(find())


def test_a_sigkilled_runs_leftovers_are_swept_by_the_next_run(
    cluster: Cluster, tmp_path: Path
) -> None:
    project = make_project(cluster, tmp_path / "app")
    held = staging_run(project, cluster, "--pipeline", "hold")
    try:
        workflow = _wait_for_hold(cluster, time.monotonic() + 120)
    finally:
        os.kill(held.pid, signal.SIGKILL)  # the runner only: its worker lives on, as it would
        held.communicate()
    (killed,) = _run_ids(project)
    assert workflow.task_queue == f"tally-{killed}"
    assert _leftovers(cluster, [killed]) != []  # what the sweep must remove

    nxt = staging_run(project, cluster, "--pipeline", "tally")
    out = nxt.communicate(timeout=300)[0]
    assert nxt.returncode == 0, out[-4000:]
    assert f"attach: run {killed}" in out, out[-4000:]
    assert _leftovers(cluster, [killed]) == []

    async def status() -> str:
        client: Any = await cluster.client()
        return str((await client.get_workflow_handle(workflow.id).describe()).status.name)

    assert asyncio.run(status()) == "TERMINATED"


def test_a_namespace_per_run_is_created_then_deleted(cluster: Cluster, tmp_path: Path) -> None:
    project = make_project(cluster, tmp_path / "app", prefix="ci-")
    proc = staging_run(project, cluster, "--pipeline", "tally")
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out[-4000:]
    (run_id,) = _run_ids(project)
    log = (project / ".staging" / "runs" / run_id / "logs" / "temporal.log").read_text()
    assert f"registered namespace ci-{run_id}" in log, log

    assert f"ci-{run_id}" not in asyncio.run(_registered(cluster))
    assert _leftovers(cluster, [run_id]) == []


def test_a_wrong_admin_password_is_services_unavailable_without_the_secret(
    cluster: Cluster, tmp_path: Path
) -> None:
    project = make_project(cluster, tmp_path / "app")
    wrong = cluster.admin_url.replace("%40", "%41")  # another password, as hostile
    proc = staging_run(project, cluster, "--pipeline", "tally", env={"TALLY_PG_ADMIN_URL": wrong})
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 2, out[-4000:]
    (run_id,) = _run_ids(project)
    diagnosis = _verdict(project, run_id)["diagnosis"]
    assert diagnosis["class"] == "services.unavailable", diagnosis
    assert "TALLY_PG_ADMIN_URL" in out and "Hint:" in out, out[-4000:]
    written = [f.read_text(errors="replace") for f in project.rglob("*") if f.is_file()]
    for text in [out, *written]:
        assert "adm:n" not in text and "adm%3An" not in text


def test_an_unset_admin_url_variable_is_config_invalid(cluster: Cluster, tmp_path: Path) -> None:
    project = make_project(cluster, tmp_path / "app")
    env = {k: v for k, v in os.environ.items() if k != "TALLY_PG_ADMIN_URL"}
    proc = staging_run(project, cluster, "--pipeline", "tally", env={"TALLY_PG_ADMIN_URL": ""})
    del env
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 2, out[-4000:]
    (run_id,) = _run_ids(project)
    assert _verdict(project, run_id)["diagnosis"]["class"] == "config.invalid"
    assert "TALLY_PG_ADMIN_URL" in out and "is empty" in out and "Hint:" in out, out[-4000:]


def test_a_kept_run_survives_sweeps_until_staging_down(cluster: Cluster, tmp_path: Path) -> None:
    # A namespace per run: the kept run's namespace is detached and swept only by `down`.
    kept_project = make_project(cluster, tmp_path / "kept", prefix="keep-", rows=2)
    proc = staging_run(kept_project, cluster, "--pipeline", "tally", "--keep-on-failure")
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1, out[-4000:]  # its check fails
    (kept,) = _run_ids(kept_project)
    assert _leftovers(cluster, [kept]) != []
    assert f"keep-{kept}" in asyncio.run(_registered(cluster))

    other = make_project(cluster, tmp_path / "other", prefix="keep-")
    nxt = staging_run(other, cluster, "--pipeline", "tally")
    out = nxt.communicate(timeout=300)[0]
    assert nxt.returncode == 0, out[-4000:]
    assert _leftovers(cluster, [kept]) != []  # detached: no sweep takes it
    assert f"keep-{kept}" in asyncio.run(_registered(cluster))

    environ = {**os.environ, "TALLY_PG_ADMIN_URL": cluster.admin_url}
    down = subprocess.run(
        [sys.executable, "-m", "staging", "down", "--project", str(kept_project)],
        capture_output=True, text=True, env=environ, check=False,
    )  # fmt: skip
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"attach: run {kept}" in down.stdout, down.stdout
    assert _leftovers(cluster, [kept]) == []
    assert f"keep-{kept}" not in asyncio.run(_registered(cluster))
    assert ADMIN_PASSWORD not in down.stdout + down.stderr


def test_a_missing_shared_namespace_is_config_invalid(cluster: Cluster, tmp_path: Path) -> None:
    project = make_project(cluster, tmp_path / "app", namespace="no-such-namespace")
    proc = staging_run(project, cluster, "--pipeline", "tally")
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 2, out[-4000:]
    (run_id,) = _run_ids(project)
    assert _verdict(project, run_id)["diagnosis"]["class"] == "config.invalid"
    assert "'no-such-namespace'" in out and "does not exist" in out and "Hint:" in out
    assert _leftovers(cluster, [run_id]) == []  # what was created before is gone again
