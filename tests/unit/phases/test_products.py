"""Phases hand typed products on; a missing one names the phase that should have made it."""

from __future__ import annotations

from pathlib import Path

import pytest

from staging.context import ConfigDone, PhaseOrderError, ServicesDone, WorkspaceDone
from staging.phases.checks import checks_phase
from staging.phases.setup import setup_phase
from staging.result import FailureClass, Status
from staging.runner import run_phase
from tests.unit.phases.fakes import fake_run


def test_need_names_the_phase_that_should_have_produced_it(tmp_path: Path) -> None:
    ctx = fake_run(tmp_path, upto="config")
    assert ctx.need(ConfigDone).loaded.app_dir == tmp_path
    assert ctx.get(ServicesDone) is None
    with pytest.raises(PhaseOrderError, match="the services phase has not produced it"):
        ctx.need(ServicesDone)


def test_a_phase_run_out_of_order_is_staging_s_own_error(tmp_path: Path) -> None:
    ctx = fake_run(tmp_path, upto="services")
    result = run_phase(ctx, "setup", setup_phase)
    assert result.status is Status.ABORTED and result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.INTERNAL_ERROR
    assert "WorkspaceDone is needed but the workspace phase" in result.diagnosis.cause


def test_views_are_none_until_their_phase_hands_on(tmp_path: Path) -> None:
    ctx = fake_run(tmp_path, upto="config")
    assert ctx.environment is None and ctx.workspace is None and ctx.tree is None
    assert ctx.run_dir == tmp_path / "runs" / ctx.run_id
    full = fake_run(tmp_path / "full")
    assert full.workspace is full.need(WorkspaceDone).workspace
    assert full.environment is full.need(ServicesDone).environment


def test_products_are_frozen(tmp_path: Path) -> None:
    done = fake_run(tmp_path).need(ConfigDone)
    with pytest.raises(AttributeError):
        done.run_dir = tmp_path  # type: ignore[misc]


def test_checks_need_the_services_not_a_none(tmp_path: Path) -> None:
    ctx = fake_run(tmp_path, upto="config")
    with pytest.raises(PhaseOrderError, match="ServicesDone"):
        checks_phase(ctx)
