"""`staging gate` over a tree's shard verdicts (staging.gate.union), through the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gate_helpers import make_verdict

from staging.gate.decide import GateState, decide
from staging.gate.shards import Shard, resolve
from staging.gate.signing import sign
from staging.gate.store import VerdictStore
from staging.gate.union import decide_union
from staging.workspace import TreeInfo

KEY = b"gate key"
TREE = TreeInfo(hash="3" * 40, commit="c" * 40, dirty=False, files=3)
OTHER = TreeInfo(hash="4" * 40, commit="d" * 40, dirty=False, files=3)
ALL = ("a", "b", "c", "d")
# Equal weights: shard 1/2 = (a, c), shard 2/2 = (b, d).


def shard_verdict(
    k: int,
    n: int,
    *,
    status: str = "passed",
    at: int = 1,
    tree: TreeInfo = TREE,
    durations: dict[str, float] | None = None,
) -> dict[str, Any]:
    shard = resolve(Shard(k, n), ALL, durations or {}, "test")
    ran = shard.pipelines if status == "passed" else shard.pipelines[:1]
    verdict = make_verdict(tree, status, run_id=f"run-{k}-of-{n}-{at}", configured=ALL, ran=ran)
    verdict["coverage"]["requested"] = list(shard.pipelines)
    verdict["shard"] = shard.to_dict()
    verdict["finished_at"] = f"2025-01-01T00:{at:02d}:00+00:00"
    if status != "passed":
        verdict["diagnosis"] = {
            "class": "pipeline.failed",
            "cause": f"{ran[0]} raised ValueError",
            "hint": f"fix {ran[0]}",
        }
    return verdict


@pytest.fixture
def store(tmp_path: Path) -> VerdictStore:
    return VerdictStore(tmp_path)


def test_both_shards_green_open_the_gate(store: VerdictStore) -> None:
    store.record(shard_verdict(1, 2))
    store.record(shard_verdict(2, 2))
    decision = decide(store, TREE, key=None)
    assert decision.state is GateState.OPEN, decision.render()
    text = decision.render()
    assert "across 2 verdict(s)" in text
    assert "shard 1/2 (run run-1-of-2-1): passed a, c" in text
    assert "shard 2/2 (run run-2-of-2-1): passed b, d" in text


def test_a_shard_is_recorded_beside_the_tree_verdict_never_as_it(store: VerdictStore) -> None:
    path = store.record(shard_verdict(1, 2))
    assert path == store.shard_dir(TREE.hash) / "1-of-2.json"
    assert store.load(TREE.hash) is None


def test_one_shard_alone_never_opens_and_the_gate_names_what_is_missing(
    store: VerdictStore,
) -> None:
    store.record(shard_verdict(1, 2))
    decision = decide(store, TREE, key=None)
    assert decision.state is GateState.PARTIAL
    text = decision.render()
    assert "pipelines no verdict ran: b, d" in text
    assert "missing: shard 2/2 (b, d)" in text
    assert "Hint: run `staging run --shard 2/2` on exactly this code" in text


def test_a_red_shard_closes_the_gate(store: VerdictStore) -> None:
    store.record(shard_verdict(1, 2))
    store.record(shard_verdict(2, 2, status="failed"))
    decision = decide(store, TREE, key=None)
    assert decision.state is GateState.RUN_FAILED
    text = decision.render()
    assert "shard 2/2 (run run-2-of-2-1) failed" in text
    assert "pipeline.failed: b raised ValueError" in text
    assert "it is the newest run of: b, d" in text
    assert "Hint: fix b" in text


def test_a_rerun_of_the_red_shard_reopens_it(store: VerdictStore) -> None:
    store.record(shard_verdict(1, 2))
    store.record(shard_verdict(2, 2, status="failed"))
    store.record(shard_verdict(2, 2, at=5))  # the same shard again: replaces its file
    assert decide(store, TREE, key=None).open


def test_n_changed_between_attempts_the_newest_verdict_of_each_pipeline_decides(
    store: VerdictStore,
) -> None:
    store.record(shard_verdict(1, 2, at=1))
    store.record(shard_verdict(2, 2, at=2, status="failed"))
    for k in (1, 2, 3):  # a second attempt with three shards, all green and newer
        store.record(shard_verdict(k, 3, at=10 + k))
    decision = decide(store, TREE, key=None)
    assert decision.open, decision.render()


def test_two_green_shards_claiming_one_pipeline_are_fine(store: VerdictStore) -> None:
    # 1/2 = (a, c) and 1/3 + 2/3 + 3/3 overlap it; b, d come only from the three-way plan.
    store.record(shard_verdict(1, 2, at=1))
    for k in (1, 2, 3):
        store.record(shard_verdict(k, 3, at=2))
    assert decide(store, TREE, key=None).open


def test_a_newer_red_shard_overrides_an_older_green_claim(store: VerdictStore) -> None:
    for k in (1, 2, 3):
        store.record(shard_verdict(k, 3, at=1))
    store.record(shard_verdict(2, 2, at=9, status="failed"))
    assert decide(store, TREE, key=None).state is GateState.RUN_FAILED


def test_a_red_full_run_stays_red_until_shards_reprove_every_pipeline(
    store: VerdictStore,
) -> None:
    red = make_verdict(TREE, "failed", run_id="full-red", configured=ALL)
    red["finished_at"] = "2025-01-01T00:05:00+00:00"
    store.record(red)
    store.record(shard_verdict(1, 2, at=1))  # older than the red full run
    store.record(shard_verdict(2, 2, at=9))
    decision = decide(store, TREE, key=None)
    assert decision.state is GateState.RUN_FAILED
    assert "full run (run full-red)" in decision.render()
    assert "it is the newest run of: a, c" in decision.render()
    store.record(shard_verdict(1, 2, at=10))
    assert decide(store, TREE, key=None).open


def test_a_stale_shard_from_another_tree_never_counts(store: VerdictStore) -> None:
    store.record(shard_verdict(1, 2))
    stale = shard_verdict(2, 2, tree=OTHER)
    # Copied by hand (or an artifact merged) into this tree's shards: read, but not counted.
    path = store.shard_dir(TREE.hash) / "2-of-2.json"
    path.write_text(json.dumps(stale))
    decision = decide(store, TREE, key=None)
    assert decision.state is GateState.PARTIAL
    text = decision.render()
    assert f"ignored {path}: it is for tree {OTHER.hash[:12]}, not this code" in text
    assert "missing: shard 2/2 (b, d)" in text
    # Recorded normally, it lands under its own tree and this one never reads it.
    store.record(stale)
    assert store.shard_dir(OTHER.hash).is_dir()


def test_an_aborted_shard_is_not_recorded_so_its_pipelines_stay_missing(
    store: VerdictStore,
) -> None:
    aborted = shard_verdict(2, 2, status="failed")
    aborted.update(status="aborted", exit_code=2)
    assert store.record(aborted) is None
    store.record(shard_verdict(1, 2))
    assert decide(store, TREE, key=None).state is GateState.PARTIAL


def test_with_a_key_every_shard_must_be_signed(store: VerdictStore) -> None:
    store.record(shard_verdict(1, 2), key=KEY)
    store.record(shard_verdict(2, 2), key=KEY)
    decision = decide(store, TREE, key=KEY)
    assert decision.open and "(signatures verified)" in decision.render()

    store.record(shard_verdict(2, 2, at=3))  # the same shard again, unsigned
    decision = decide(store, TREE, key=KEY)
    assert decision.state is GateState.UNSIGNED
    assert "shard 2/2 (run run-2-of-2-3)" in decision.render()
    assert decide(store, TREE, key=KEY, require_signature=False).open


def test_a_tampered_shard_closes_the_gate_even_unsigned_allowed(store: VerdictStore) -> None:
    store.record(shard_verdict(1, 2), key=KEY)
    red = sign(shard_verdict(2, 2, status="failed"), KEY)
    red["status"], red["exit_code"] = "passed", 0  # flipped after signing
    path = store.shard_dir(TREE.hash) / "2-of-2.json"
    path.write_text(json.dumps(red))
    decision = decide(store, TREE, key=KEY, require_signature=False)
    assert decision.state is GateState.BAD_SIGNATURE
    assert "shard 2/2" in decision.render()


def test_a_garbled_shard_file_closes_the_gate(store: VerdictStore) -> None:
    store.record(shard_verdict(1, 2))
    (store.shard_dir(TREE.hash) / "2-of-2.json").write_text("{not json")
    assert decide(store, TREE, key=None).state is GateState.UNREADABLE


def test_shards_cut_from_different_plans_are_named(store: VerdictStore) -> None:
    # Machine 1 had durations that put a alone; machine 2 had none: c is in neither shard.
    store.record(shard_verdict(1, 2, durations={"a": 100.0, "b": 1.0, "c": 1.0, "d": 1.0}))
    store.record(shard_verdict(2, 2))
    decision = decide(store, TREE, key=None)
    assert decision.state is GateState.PARTIAL
    text = decision.render()
    assert "pipelines no verdict ran: c" in text
    assert "cut from different plans" in text and "staging-durations.json" in text


def test_without_shards_the_single_verdict_rules_are_unchanged(store: VerdictStore) -> None:
    store.record(make_verdict(TREE, configured=ALL, ran=("a",)))
    assert decide(store, TREE, key=None).state is GateState.PARTIAL
    store.record(make_verdict(TREE, configured=ALL))
    assert decide(store, TREE, key=None).open


def test_a_single_shard_of_one_is_the_whole_run(store: VerdictStore) -> None:
    store.record(shard_verdict(1, 1))
    assert decide(store, TREE, key=None).open


def test_with_no_pipeline_to_decide_the_newest_verdict_speaks_for_the_tree(
    tmp_path: Path,
) -> None:
    green = make_verdict(TREE, configured=())
    red = make_verdict(TREE, "failed", run_id="newer", configured=())
    red["finished_at"] = "2025-01-01T00:09:00+00:00"
    found = [(tmp_path / "green.json", green), (tmp_path / "red.json", red)]
    decision = decide_union(found, TREE, key=None, require_signature=False, implied=True)
    assert decision.state is GateState.RUN_FAILED
    decision = decide_union(found[:1], TREE, key=None, require_signature=False, implied=True)
    assert decision.open


def test_the_shard_that_completes_the_tree_makes_it_the_last_green(store: VerdictStore) -> None:
    """`last-green.json` (the "what changed" baseline, --rollout's old tree) follows the
    gate: a shard alone is no baseline; the one whose pass completes the tree is."""
    from staging.report import _set_green

    first = shard_verdict(1, 2)
    store.record(first)
    assert _set_green(store, first, None) is None
    assert store.last_green() is None
    second = shard_verdict(2, 2)
    store.record(second)
    line = _set_green(store, second, None)
    assert line is not None and "the shards of this tree now cover it" in line
    green = store.last_green()
    assert green is not None
    assert (green["tree"], green["run_id"]) == (TREE.hash, "run-2-of-2-1")


def test_a_red_shard_keeps_the_last_green_where_it_was(store: VerdictStore) -> None:
    from staging.report import _set_green

    store.record(shard_verdict(1, 2, status="failed"))
    second = shard_verdict(2, 2)
    store.record(second)
    assert _set_green(store, second, None) is None
    assert store.last_green() is None
