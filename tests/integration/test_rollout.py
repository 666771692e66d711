"""The rollout rehearsal (issue 15) on the example app, against real services.

Each case: the example is committed and recorded as the last green tree (through the
gate store's own API: a green run of the unchanged example is what every other corpus
test already proves), the case's change is committed on top, and `staging run
--rollout` must end in the case's verdict. The rehearsal's own workflows are then
checked to have been started on the old tree and finished on this one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from staging.commands.run import run_staging
from staging.context import RunOptions
from staging.gate.store import VerdictStore
from staging.workspace import tree_hash
from tests.corpus import _git, apply_patch, load_case, materialize
from tests.integration.leftovers import containers_of, processes_of

pytestmark = pytest.mark.slow


def green_then_change(case: str, dest: Path) -> tuple[Path, str]:
    """The example as the last green tree, then `case`'s change committed on top."""
    app = materialize("good", dest)
    green = tree_hash(app, ".env")
    coverage = {
        "configured": ["everflow"],
        "ran": ["everflow"],
        "replay": "passed",
        "checks": "passed",
    }
    verdict = {"status": "passed", "exit_code": 0, "run_id": "green", "tree": green.to_dict()}
    verdict["coverage"] = coverage
    assert VerdictStore(app).set_last_green(verdict, settings=None) is not None
    spec = load_case(case)
    assert spec.patch is not None
    apply_patch(spec.patch, app)
    for args in (("add", "--all"), ("commit", "-q", "--no-verify", "-m", case)):
        done = _git(
            app,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t.invalid",
            "-c",
            "commit.gpgsign=false",
            *args,
        )
        assert done.returncode == 0, done.stderr
    return app, green.hash


def run_rollout(app: Path, backend: str, **overrides: Any) -> tuple[int, dict[str, Any]]:
    code = run_staging(
        RunOptions(
            project=app, overrides={"backend": backend, "rollout.enabled": True, **overrides}
        )
    )
    (run,) = sorted((app / ".staging" / "runs").iterdir())
    return code, json.loads((run / "verdict.json").read_text())


SWAP_CASES = ["rollout/paced-transform", "rollout/paced-transform-patched"]


def _params() -> list[object]:
    return [
        pytest.param(case, backend, marks=getattr(pytest.mark, backend), id=f"{case}-{backend}")
        for case in SWAP_CASES
        for backend in ("process", "docker")
    ]


@pytest.mark.parametrize(("case", "backend"), _params())
def test_rollout_case(case: str, backend: str, tmp_path: Path) -> None:
    spec = load_case(case)
    app, green = green_then_change(case, tmp_path / "app")
    code, verdict = run_rollout(app, backend)
    phases = {p["name"]: p for p in verdict["phases"]}
    rollout = phases["rollout"]
    shown = json.dumps(verdict["diagnosis"], indent=1) + json.dumps(rollout, indent=1)[:3000]
    assert rollout["details"]["from_tree"] == green, shown
    flights = rollout["details"]["workflows"]
    assert flights and all(f["swap_event"] for f in flights), shown
    assert rollout["details"]["swap_at"] is not None
    if spec.expected == "pass":
        assert code == 0, shown
        assert rollout["status"] == "passed"
        assert phases["checks"]["status"] == "passed"
    else:
        assert code == 1, shown
        diagnosis = verdict["diagnosis"]
        assert spec.accepts(diagnosis["class"]), shown
        text = diagnosis["cause"] + "\n" + "\n".join(diagnosis["evidence"])
        assert not spec.evidence_missing(text), shown
        # a plain run (no --rollout) of the same tree was green in this very run
        assert phases["pipelines"]["status"] == "passed"
    report = next((app / ".staging" / "runs").iterdir()) / "report.md"
    assert "worker swap :milestone" in report.read_text()
    assert processes_of(verdict["run_id"]) == []
    assert containers_of(verdict["run_id"]) == []


@pytest.mark.process
def test_two_replicas_poll_and_an_immediate_rollout_replaces_both(tmp_path: Path) -> None:
    app, _ = green_then_change("rollout/paced-transform-patched", tmp_path / "app")
    code, verdict = run_rollout(
        app, "process", **{"worker.replicas": 2, "rollout.strategy": "immediate"}
    )
    phases = {p["name"]: p for p in verdict["phases"]}
    shown = json.dumps(verdict["diagnosis"], indent=1) + json.dumps(phases["rollout"])[:3000]
    assert code == 0, shown
    (worker,) = phases["worker"]["details"]["workers"]
    assert len(set(worker["replicas"])) == 2, phases["worker"]
    assert "2 worker processes" in phases["worker"]["details"]["summary"]
    stops = phases["rollout"]["details"]["stops"]
    assert [s.split(" ")[0] for s in stops] == ["worker-green-1", "worker-green-2"], stops
    assert processes_of(verdict["run_id"]) == []


INTERRUPT_CASES = ["rollout/load-log-not-idempotent", "rollout/load-log-idempotent"]


@pytest.mark.parametrize(
    ("case", "backend"),
    [
        pytest.param(case, backend, marks=getattr(pytest.mark, backend), id=f"{case}-{backend}")
        for case in INTERRUPT_CASES
        for backend in ("process", "docker")
    ],
)
def test_interrupted_activities_case(case: str, backend: str, tmp_path: Path) -> None:
    spec = load_case(case)
    app = materialize(case, tmp_path / "app")  # `interrupt = true` is in the case's config
    code = run_staging(RunOptions(project=app, overrides={"backend": backend}))
    (run,) = sorted((app / ".staging" / "runs").iterdir())
    verdict = json.loads((run / "verdict.json").read_text())
    phases = {p["name"]: p for p in verdict["phases"]}
    interrupt = phases["interrupt"]
    shown = json.dumps(verdict["diagnosis"], indent=1) + json.dumps(interrupt, indent=1)[:3000]
    # load was cut off (the other activities are too short to be caught, and say so)
    assert [k.split(" ")[1] for k in interrupt["details"]["interrupted"]] == ["'load'"], shown
    assert "replacement" in interrupt["details"]["interrupted"][0], shown  # one replica
    if spec.expected == "pass":
        assert code == 0, shown
        assert phases["checks"]["status"] == "passed"
    else:
        assert code == 1, shown
        diagnosis = verdict["diagnosis"]
        assert spec.accepts(diagnosis["class"]), shown
        text = diagnosis["cause"] + "\n" + "\n".join(diagnosis["evidence"])
        assert not spec.evidence_missing(text), shown
    assert processes_of(verdict["run_id"]) == []
    assert containers_of(verdict["run_id"]) == []


@pytest.mark.process
def test_with_two_replicas_the_other_one_takes_the_retry(tmp_path: Path) -> None:
    app = materialize("rollout/load-log-idempotent", tmp_path / "app")
    code = run_staging(
        RunOptions(project=app, overrides={"backend": "process", "worker.replicas": 2})
    )
    (run,) = sorted((app / ".staging" / "runs").iterdir())
    verdict = json.loads((run / "verdict.json").read_text())
    interrupt = next(p for p in verdict["phases"] if p["name"] == "interrupt")
    shown = json.dumps(verdict["diagnosis"]) + json.dumps(interrupt)[:3000]
    assert code == 0, shown
    (kill,) = interrupt["details"]["interrupted"]
    assert "SIGKILL to worker-" in kill and "replacement" not in kill, kill
    assert processes_of(verdict["run_id"]) == []


@pytest.mark.process
def test_without_a_last_green_tree_the_rollout_is_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = materialize("good", tmp_path / "app")
    code, verdict = run_rollout(app, "process")
    rollout = next(p for p in verdict["phases"] if p["name"] == "rollout")
    assert code == 0
    assert rollout["status"] == "skipped"
    assert "no green run of this app recorded yet" in rollout["details"]["reason"]
    assert "rollout not rehearsed" in capsys.readouterr().out
