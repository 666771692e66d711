"""`--shard K/N`: parsing, the balanced plan, and the durations it is balanced by."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from staging.errors import ConfigError
from staging.gate.durations import (
    DURATIONS_FILE,
    recorded_durations,
    resolve_shard,
    shard_durations,
    shard_note,
)
from staging.gate.shards import Shard, ShardInfo, parse_shard, plan_shards, resolve, shard_argument
from staging.gate.store import VerdictStore

NAMES = st.lists(
    st.text(alphabet="abcdefghij-_0123", min_size=1, max_size=8), min_size=1, max_size=20
).map(lambda names: list(dict.fromkeys(names)))
DURATIONS = st.floats(min_value=0, max_value=1e4, allow_nan=False)


@given(names=NAMES, data=st.data())
@settings(max_examples=200, deadline=None)
def test_every_pipeline_is_in_exactly_one_shard(names: list[str], data: st.DataObject) -> None:
    count = data.draw(st.integers(min_value=1, max_value=len(names)))
    durations = data.draw(st.dictionaries(st.sampled_from(names), DURATIONS))
    shards = plan_shards(names, durations, count)

    assert len(shards) == count
    placed = [name for shard in shards for name in shard]
    assert sorted(placed) == sorted(names)  # each exactly once
    assert all(shards), "N <= pipelines: no shard is empty"
    for shard in shards:  # config order within a shard
        assert list(shard) == [n for n in names if n in shard]
    # Deterministic: the same inputs cut the same plan, whatever order the durations came in.
    assert plan_shards(names, dict(reversed(list(durations.items()))), count) == shards


@given(names=NAMES, data=st.data())
@settings(max_examples=100, deadline=None)
def test_resolved_shards_of_one_plan_partition_the_pipelines(
    names: list[str], data: st.DataObject
) -> None:
    count = data.draw(st.integers(min_value=1, max_value=len(names)))
    durations = data.draw(st.dictionaries(st.sampled_from(names), DURATIONS))
    shards = [resolve(Shard(k, count), names, durations, "test") for k in range(1, count + 1)]

    assert sorted(n for s in shards for n in s.pipelines) == sorted(names)
    assert len({s.plan.fingerprint for s in shards if s.plan}) == 1


def test_longest_first_balances_the_load() -> None:
    durations = {"a": 60.0, "b": 30.0, "c": 20.0, "d": 10.0}
    assert plan_shards(["a", "b", "c", "d"], durations, 2) == (("a",), ("b", "c", "d"))
    assert plan_shards(["a", "b", "c", "d"], {}, 2) == (("a", "c"), ("b", "d"))


def test_a_pipeline_without_a_duration_weighs_the_mean_of_the_known_ones() -> None:
    shard = resolve(Shard(1, 2), ["a", "b", "new"], {"a": 10.0, "b": 10.0}, "test")
    assert shard.plan is not None
    # "new" weighs 10 like the others, so it is not piled onto a shard as if free.
    assert sorted(len(s) for s in shard.plan.shards) == [1, 2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1/2", (1, 2)), ("2/2", (2, 2)), (" 3 / 4 ", (3, 4)), ("1/1", (1, 1))],
)
def test_parse(text: str, expected: tuple[int, int]) -> None:
    shard = parse_shard(text)
    assert (shard.index, shard.count) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0/2", "expected 1 <= K <= N, got K=0 with N=2"),
        ("3/2", "expected 1 <= K <= N, got K=3 with N=2"),
        ("1/0", "got N=0"),
        ("2", "expected K/N"),
        ("a/b", "expected K/N"),
        ("-1/2", "expected K/N"),
        ("1/2/3", "expected K/N"),
    ],
)
def test_parse_rejects_with_a_hint(text: str, says: str) -> None:
    with pytest.raises(ValueError, match="Hint: ") as caught:
        parse_shard(text)
    assert says in str(caught.value)
    with pytest.raises(argparse.ArgumentTypeError):
        shard_argument(text)


def test_the_cli_refuses_a_bad_shard_with_the_hint(capsys: pytest.CaptureFixture[str]) -> None:
    from staging.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser("run").parse_args(["run", "--shard", "3/2"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --shard: expected 1 <= K <= N, got K=3 with N=2" in err
    assert "Hint: shards are numbered from 1 to N" in err


def test_more_shards_than_pipelines_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(Shard(3, 3), ["a", "b"], {}, "test")
    assert "2 pipeline(s) cannot fill 3 shards" in caught.value.render()
    assert "Hint: use N <= 2" in caught.value.render()


def test_shard_and_pipeline_cannot_be_combined() -> None:
    with pytest.raises(ConfigError, match="cannot be combined"):
        resolve(Shard(1, 2), ["a", "b"], {}, "test", requested=["a"])


def test_the_verdict_record_round_trips() -> None:
    shard = resolve(Shard(2, 2), ["a", "b", "c"], {"a": 5.0}, "durations from test")
    record = shard.to_dict()
    assert record["pipelines"] == list(shard.pipelines)
    info = ShardInfo.from_verdict({"shard": json.loads(json.dumps(record))})
    assert info is not None
    assert (info.index, info.count, info.pipelines) == (2, 2, shard.pipelines)
    assert info.plan == shard.plan.shards if shard.plan else False
    assert info.file_name == "2-of-2.json"
    assert "shard 2/2:" in shard_note(shard) and "durations from test" in shard_note(shard)


@pytest.mark.parametrize(
    "record",
    [None, "1/2", {"index": 0, "count": 2}, {"index": 3, "count": 2}, {"index": "1", "count": 2}],
)
def test_a_garbled_shard_record_is_no_shard(record: object) -> None:
    assert ShardInfo.from_verdict({"shard": record}) is None


def _run(store: VerdictStore, run_id: str, pipelines: dict[str, float], **extra: object) -> None:
    run_dir = store.runs_dir / run_id
    run_dir.mkdir(parents=True)
    verdict = {
        "run_id": run_id,
        "pipelines": [{"name": n, "status": "passed", "duration": d} for n, d in pipelines.items()],
        **extra,
    }
    (run_dir / "verdict.json").write_text(json.dumps(verdict))


def test_durations_committed_file_first(tmp_path: Path) -> None:
    (tmp_path / DURATIONS_FILE).write_text(json.dumps({"a": 3, "b": 1.5}))
    _run(VerdictStore(tmp_path), "20250101-000000-aaaaaa", {"a": 99.0})
    durations, basis = shard_durations(tmp_path, ["a", "b"])
    assert durations == {"a": 3.0, "b": 1.5}
    assert DURATIONS_FILE in basis


@pytest.mark.parametrize("text", ["[1, 2]", '{"a": "slow"}', '{"a": -1}', "{not json"])
def test_a_bad_durations_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    (tmp_path / DURATIONS_FILE).write_text(text)
    with pytest.raises(ConfigError) as caught:
        shard_durations(tmp_path, ["a"])
    assert DURATIONS_FILE in caught.value.render() and "Hint:" in caught.value.render()


def test_recorded_durations_newest_first_and_never_from_shard_runs(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path)
    _run(store, "20250101-000000-aaaaaa", {"a": 1.0, "b": 2.0, "c": 3.0})
    _run(store, "20250102-000000-bbbbbb", {"a": 10.0})
    # A shard run must not change the plan the next shard of the same attempt cuts.
    _run(store, "20250103-000000-cccccc", {"a": 100.0, "b": 200.0}, shard={"index": 1})
    durations, newest = recorded_durations(store, ["a", "b"])
    assert durations == {"a": 10.0, "b": 2.0}
    assert newest == "20250102-000000-bbbbbb"


def test_nothing_recorded_means_equal_weights(tmp_path: Path) -> None:
    durations, basis = shard_durations(tmp_path, ["a", "b"])
    assert durations == {} and "every pipeline weighs the same" in basis
    shard = resolve_shard(Shard(1, 2), tmp_path, ["a", "b"])
    assert shard.pipelines == ("a",)
