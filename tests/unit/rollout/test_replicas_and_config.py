"""Replica readiness by identity, the rollout's config keys, the last green tree (issue 15)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from staging.config.model import RolloutConfig, WorkerConfig
from staging.gate.store import VerdictStore
from staging.phases import RUN_PHASES, run_phases
from staging.rollout.pollers import own_pollers
from staging.rollout.tree import NoGreenTree, last_green_tree, materialise
from staging.workspace import tree_hash
from tests.corpus import APP, CASES, apply_patch, copy_app, load_case
from tests.corpus.rollout import ROLLOUT_CASES


def test_each_replica_is_found_by_its_pid_not_by_a_stopped_workers_poller() -> None:
    listed = ["100@host", "200@host", "300@host"]
    assert own_pollers(listed, [200, 300], stale=[]) == ["200@host", "300@host"]
    # 100 is a worker stopped a moment ago: the server still lists it; it does not count
    assert own_pollers(["100@host", "200@host"], [200, 300], stale=["100@host"]) == ["200@host"]
    # a custom identity: counted when it is new
    assert own_pollers(["100@host", "blue"], [200], stale=["100@host"]) == ["blue"]


def test_replicas_default_to_one_and_are_validated() -> None:
    assert WorkerConfig(command=["python"], task_queue="q").replicas == 1
    with pytest.raises(ValidationError, match="replicas"):
        WorkerConfig(command=["python"], task_queue="q", replicas=0)


def test_rollout_is_off_by_default_and_its_swap_point_is_checked() -> None:
    assert RolloutConfig().enabled is False and RolloutConfig().strategy == "rolling"
    RolloutConfig(at={"after_activity": "extract"})
    for bad in ({"after_events": 0}, {"after_activity": ""}, "half", {"x": 1}):
        with pytest.raises(ValidationError):
            RolloutConfig(at=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RolloutConfig(strategy="blue-green")  # type: ignore[arg-type]


class _Ctx:
    def __init__(self, rollout: bool, chaos: bool = False, interrupt: bool = False) -> None:
        worker = WorkerConfig(command=["python"], task_queue="q", interrupt=interrupt)

        class Loaded:
            class config:
                workers = [worker]

        Loaded.config.rollout = RolloutConfig(enabled=rollout)  # type: ignore[attr-defined]
        Loaded.config.chaos = chaos  # type: ignore[attr-defined]
        self.loaded = Loaded()


def _names(ctx: _Ctx) -> list[str]:
    return [name for name, _ in run_phases(ctx)]  # type: ignore[arg-type]


def test_the_rollout_and_interrupt_phases_run_only_when_enabled() -> None:
    names = [name for name, _ in RUN_PHASES]
    assert "rollout" not in names and "interrupt" not in names
    assert _names(_Ctx(False)) == names  # the default run is the run it always was
    after = names[: names.index("pipelines") + 1]
    assert _names(_Ctx(True)) == [*after, "rollout", *names[-1:]]
    both = [*after, "interrupt", "rollout", *names[-1:]]
    assert _names(_Ctx(True, chaos=True)) == both
    assert _names(_Ctx(True, interrupt=True)) == both


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_the_last_green_tree_is_rebuilt_from_git_even_after_the_files_changed(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    app = repo / "services" / "app"
    app.mkdir(parents=True)
    (app / "worker.py").write_text("old\n")
    (repo / "outside.txt").write_text("not the app\n")
    _git(repo, "init", "-q")
    with pytest.raises(NoGreenTree, match="no green run"):
        last_green_tree(app)
    green = tree_hash(app, ".env")
    verdict = {
        "status": "passed",
        "exit_code": 0,
        "tree": green.to_dict(),
        "coverage": {"configured": [], "ran": [], "replay": "passed", "checks": "passed"},
    }
    VerdictStore(app).set_last_green(verdict, settings=None)
    (app / "worker.py").write_text("new\n")  # uncommitted, and the tree was never committed
    found = last_green_tree(app)
    assert found.tree == green.hash
    workspace = materialise(app, found, tmp_path)
    try:
        assert (workspace.app / "worker.py").read_text() == "old\n"
        assert not (workspace.app / "outside.txt").exists()  # app_dir honoured
    finally:
        workspace.remove()
    assert not workspace.root.exists()


def test_a_tree_git_no_longer_has_is_a_skip(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    _git(app, "init", "-q")
    store = VerdictStore(app)
    store.root.mkdir()
    store.last_green_path.write_text('{"tree": "' + "ab" * 20 + '", "commit": null}')
    with pytest.raises(NoGreenTree, match="no longer has"):
        materialise(app, last_green_tree(app), tmp_path)


@pytest.mark.parametrize("name", ROLLOUT_CASES)
def test_rollout_case_is_valid_and_its_patch_applies(name: str, tmp_path: Path) -> None:
    case = load_case(name)
    assert case.patch is not None
    copy_app(APP, tmp_path / "app")
    apply_patch(case.patch, tmp_path / "app", check_only=True)
    assert name not in CASES  # never run without --rollout by the ordinary corpus test
