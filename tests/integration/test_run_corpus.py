"""The harness on the failure corpus: every case ends in the expected verdict and class,
the diagnosis names the real cause, no secret reaches any artifact or the console, and
nothing is left running. The incident's two failures run on both backends."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from staging.commands.run import run_staging
from staging.context import RunOptions
from staging.services import environment
from tests.corpus import CASES, load_case, materialize
from tests.hint_names import AppNames, unknown_names
from tests.integration.leftovers import containers_of, processes_of

pytestmark = pytest.mark.slow


def _params() -> list[object]:
    params: list[object] = []
    for name in CASES:
        case = load_case(name)
        params.append(
            pytest.param(name, "process", marks=pytest.mark.process, id=f"{name}-process")
        )
        if case.both_backends:
            params.append(
                pytest.param(name, "docker", marks=pytest.mark.docker, id=f"{name}-docker")
            )
    return params


def _spy_passwords(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    real: Callable[..., str] = environment.generate_password
    seen: list[str] = []

    def spy(*args: object, **kwargs: object) -> str:
        password = real(*args, **kwargs)
        seen.append(password)
        return password

    monkeypatch.setattr(environment, "generate_password", spy)
    return seen


@pytest.mark.parametrize(("name", "backend"), _params())
def test_corpus_case(
    name: str,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = load_case(name)
    app = materialize(name, tmp_path / "app")
    passwords = _spy_passwords(monkeypatch)

    code = run_staging(RunOptions(project=app, overrides={"backend": backend}))
    console = capsys.readouterr()

    runs = sorted((app / ".staging" / "runs").iterdir())
    assert len(runs) == 1, runs
    verdict = json.loads((runs[0] / "verdict.json").read_text())
    diagnosis = verdict["diagnosis"] or {}
    shown = json.dumps(diagnosis, indent=1)

    if case.expected == "pass":
        assert code == 0, shown + console.out[-3000:]
        assert verdict["status"] == "passed"
    else:
        assert code == 1, shown + console.out[-3000:]
        assert case.accepts(diagnosis.get("class", "")), shown
        text = diagnosis["cause"] + "\n" + "\n".join(diagnosis["evidence"])
        assert not case.evidence_missing(text), shown
        # the console shows the diagnosis first-hand, with its hint
        assert diagnosis["class"] in console.out and "Hint:" in console.out
        # ... and its deciding line within the diagnosis' first 12 lines (issue 12)
        assert not case.deciding_missing(console.out), console.out[-3000:]
        assert "staging/forkserver/" not in shown and "<frozen runpy>" not in shown
        # ... and a hint that names only the app's own fields and variables (issue 12)
        assert not unknown_names(diagnosis.get("hint", ""), AppNames.of(app)), diagnosis["hint"]
    assert verdict["backend"] == backend

    # No secret anywhere: not in any artifact of the run, not on the console.
    assert passwords, "the services layer generated no password"
    for password in passwords:
        assert password not in console.out + console.err
        for path in (app / ".staging").rglob("*"):
            if path.is_file():
                assert password not in path.read_text(errors="replace"), path

    # Nothing left behind.
    assert processes_of(verdict["run_id"]) == []
    assert containers_of(verdict["run_id"]) == []
