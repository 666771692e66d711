from __future__ import annotations

import json
from pathlib import Path

import pytest
from gate_helpers import make_verdict

from staging.gate.decide import GateState, decide
from staging.gate.signing import sign
from staging.gate.store import VerdictStore
from staging.workspace import TreeInfo

KEY = b"gate key"
GREEN = TreeInfo(hash="1" * 40, commit="a" * 40, dirty=False, files=3)
NOW = TreeInfo(hash="2" * 40, commit="b" * 40, dirty=True, files=3)


def changed(old: str, new: str) -> list[str]:
    assert (old, new) == (GREEN.hash, NOW.hash)
    return ["M tinyapp/settings.py"]


@pytest.fixture
def store(tmp_path: Path) -> VerdictStore:
    return VerdictStore(tmp_path)


def test_open_for_a_passing_verdict_of_this_tree(store: VerdictStore) -> None:
    store.record(make_verdict(NOW, run_id="r1"))
    decision = decide(store, NOW, key=None)
    assert decision.open and decision.state is GateState.OPEN
    assert "r1" in decision.render()


def test_no_verdict_and_nothing_ever_green(store: VerdictStore) -> None:
    decision = decide(store, NOW, key=None, changed_files=changed)
    assert decision.state is GateState.NO_VERDICT
    assert "no run of this project has passed yet" in decision.render()


def test_no_verdict_names_the_files_changed_since_green(store: VerdictStore) -> None:
    green = make_verdict(GREEN, run_id="green-run")
    store.record(green)
    store.set_last_green(green, settings=None)
    text = decide(store, NOW, key=None, changed_files=changed).render()
    assert "CLOSED" in text and "green-run" in text
    assert "M tinyapp/settings.py" in text


def test_listing_changes_may_fail_but_the_gate_stays_closed(store: VerdictStore) -> None:
    green = make_verdict(GREEN)
    store.set_last_green(green, settings=None)

    def broken(old: str, new: str) -> list[str]:
        raise RuntimeError("tree pruned")

    decision = decide(store, NOW, key=None, changed_files=broken)
    assert not decision.open
    assert "could not list the changed files" in decision.render()


def test_a_failed_run_for_this_tree_keeps_it_shut_even_after_an_older_green(
    store: VerdictStore,
) -> None:
    green = make_verdict(GREEN)
    store.record(green)
    store.set_last_green(green, settings=None)
    store.record(make_verdict(NOW, "failed", run_id="red-run"))
    decision = decide(store, NOW, key=None, changed_files=changed)
    text = decision.render()
    assert decision.state is GateState.RUN_FAILED
    assert "settings.secret_missing: db_password resolved from its default" in text
    assert "STOP: read the diagnosis (`staging report red-run`) before trying again." in text
    assert 'Hint: restore env_file=".env"' in text


def test_the_newest_verdict_of_a_tree_decides(store: VerdictStore) -> None:
    store.record(make_verdict(NOW, run_id="r1"))
    store.record(make_verdict(NOW, "failed", run_id="r2"))
    assert not decide(store, NOW, key=None).open
    store.record(make_verdict(NOW, run_id="r3"))
    assert decide(store, NOW, key=None).open


def test_require_signature_without_a_key(store: VerdictStore) -> None:
    store.record(make_verdict(NOW), key=KEY)
    decision = decide(store, NOW, key=None, require_signature=True)
    assert decision.state is GateState.NO_KEY
    assert "STAGING_GATE_KEY" in decision.render()


def test_signed_verdict_opens_with_require_signature(store: VerdictStore) -> None:
    store.record(make_verdict(NOW), key=KEY)
    decision = decide(store, NOW, key=KEY, require_signature=True)
    assert decision.open and "signature verified" in decision.reason


def test_unsigned_verdict_rejected_whenever_a_key_is_set(store: VerdictStore) -> None:
    store.record(make_verdict(NOW))
    assert decide(store, NOW, key=None).open  # no key anywhere: nothing to require
    implied = decide(store, NOW, key=KEY)
    assert implied.state is GateState.UNSIGNED
    assert "STAGING_GATE_KEY is set" in implied.reason and "--allow-unsigned" in implied.hint
    assert decide(store, NOW, key=KEY, require_signature=True).state is GateState.UNSIGNED
    assert decide(store, NOW, key=KEY, require_signature=False).open  # --allow-unsigned


def test_key_set_and_an_unsigned_edited_verdict_closes(store: VerdictStore) -> None:
    """The issue's case: a red verdict, its signature dropped and its status flipped."""
    store.record(make_verdict(NOW, "failed"), key=KEY)
    path = store.verdict_path(NOW.hash)
    data = json.loads(path.read_text())
    del data["signature"]
    data.update(status="passed", exit_code=0, diagnosis=None)
    path.write_text(json.dumps(data))
    decision = decide(store, NOW, key=KEY)  # no flag at all
    assert not decision.open and decision.state is GateState.UNSIGNED


def test_partial_run_closes_and_names_the_missing_pipelines(store: VerdictStore) -> None:
    store.record(make_verdict(NOW, run_id="r1", configured=("greet", "everflow"), ran=("greet",)))
    decision = decide(store, NOW, key=None)
    assert decision.state is GateState.PARTIAL and not decision.open
    text = decision.render()
    assert "partial run: 1 of 2 pipelines" in text
    assert "pipelines not run: everflow" in text
    assert "limited to: greet (--pipeline)" in text
    assert "without --pipeline" in decision.hint


def test_a_run_of_every_pipeline_by_name_is_complete(store: VerdictStore) -> None:
    store.record(make_verdict(NOW, configured=("greet", "everflow"), ran=("everflow", "greet")))
    assert decide(store, NOW, key=None).open


def test_a_pass_whose_checks_did_not_run_is_partial(store: VerdictStore) -> None:
    verdict = make_verdict(NOW)
    verdict["coverage"]["checks"] = "not reached"
    verdict["coverage"]["complete"] = True  # recomputed from the lists, never trusted
    store.record(verdict)
    decision = decide(store, NOW, key=None)
    assert decision.state is GateState.PARTIAL
    assert "checks not run" in decision.render()


def test_a_verdict_without_coverage_closes(store: VerdictStore) -> None:
    verdict = make_verdict(NOW, run_id="old")
    del verdict["coverage"]
    verdict["schema"] = 1
    store.verdicts_dir.mkdir(parents=True)
    store.verdict_path(NOW.hash).write_text(json.dumps(verdict))
    decision = decide(store, NOW, key=None)
    assert decision.state is GateState.PARTIAL
    assert "does not record which pipelines ran" in decision.reason


def test_tampered_verdict_rejected_even_when_not_required(store: VerdictStore) -> None:
    store.record(make_verdict(NOW, "failed"), key=KEY)
    path = store.verdict_path(NOW.hash)
    forged = path.read_text().replace('"status": "failed"', '"status": "passed"')
    path.write_text(forged)
    assert decide(store, NOW, key=KEY).state is GateState.BAD_SIGNATURE
    assert decide(store, NOW, key=KEY, require_signature=True).state is GateState.BAD_SIGNATURE


def test_a_verdict_copied_onto_another_tree_is_rejected(store: VerdictStore) -> None:
    store.verdicts_dir.mkdir(parents=True)
    other = sign(make_verdict(GREEN), KEY)  # a genuine, signed green verdict of other code
    store.verdict_path(NOW.hash).write_text(__import__("json").dumps(other))
    decision = decide(store, NOW, key=KEY, require_signature=True)
    assert decision.state is GateState.MISMATCH


def test_unreadable_verdict_closes(store: VerdictStore) -> None:
    store.verdicts_dir.mkdir(parents=True)
    store.verdict_path(NOW.hash).write_text("[]")
    assert decide(store, NOW, key=None).state is GateState.UNREADABLE
