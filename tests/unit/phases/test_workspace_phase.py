"""The workspace phase alone, with the copy and the delivery faked: what it hands on, and
that a copy it could not finish is removed by the phase itself."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import staging.phases.workspace as workspace_module
from staging.context import TreeHashed, WorkspaceDone
from staging.errors import ConfigError
from staging.phases.workspace import workspace_phase
from staging.result import Status
from staging.workspace import TreeInfo
from tests.unit.phases.fakes import WORKER, FakeDelivery, FakeRun, FakeWorkspace, fake_run

TABLE = {"worker": WORKER, "env": {"DATABASE_URL": "{postgres.url}", "QUEUE": "q"}}


def prefetched(
    tmp_path: Path, table: dict[str, Any] | None = None
) -> tuple[FakeRun, FakeWorkspace]:
    """A run whose copy was made while the services started (as `staging run` does)."""
    ctx = fake_run(tmp_path, table or TABLE, upto="services")
    workspace = FakeWorkspace(tmp_path / "copy")
    workspace.app.mkdir(parents=True)
    future: Future[Any] = Future()
    future.set_result((TreeInfo("b" * 40, None, False, 1), workspace))
    ctx.background["workspace"] = future
    return ctx, workspace


@pytest.fixture
def delivered(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []

    def deliver(workspace: object, rendered: dict[str, str], **kwargs: object) -> FakeDelivery:
        seen.append(rendered)
        return FakeDelivery(env_vars=dict(rendered))

    def app_env(
        loaded: object, workspace: object, variables: dict[str, str], origins: Path
    ) -> dict[str, str]:
        return {"HERMETIC": "1", **variables}

    monkeypatch.setattr(workspace_module, "deliver", deliver)
    monkeypatch.setattr(workspace_module, "app_process_env", app_env)
    return seen


def test_the_delivered_copy_is_handed_on(tmp_path: Path, delivered: list[dict[str, str]]) -> None:
    ctx, workspace = prefetched(tmp_path)
    result = workspace_phase(ctx)
    assert result.status is Status.PASSED, result.diagnosis
    done = ctx.need(WorkspaceDone)
    assert done.workspace is workspace and ctx.need(TreeHashed).tree.hash == "b" * 40
    assert done.rendered_env["DATABASE_URL"].startswith("postgresql://app:")
    assert done.app_env["QUEUE"] == "q" and done.app_env["HERMETIC"] == "1"
    assert done.origins_dir == workspace.root / "origins"
    assert "workspace" not in ctx.background and workspace.removed == 0


def test_a_copy_that_cannot_be_finished_is_removed(
    tmp_path: Path, delivered: list[dict[str, str]]
) -> None:
    ctx, workspace = prefetched(tmp_path, {"worker": {**WORKER, "cwd": "no-such-dir"}})
    with pytest.raises(ConfigError, match="no such directory in the deployed tree"):
        workspace_phase(ctx)
    assert workspace.removed == 1
    assert ctx.get(WorkspaceDone) is None
    assert ctx.tree is not None  # the verdict still names the tree that failed
