from __future__ import annotations

import json
from pathlib import Path

import pytest
from gate_helpers import make_verdict

from staging.errors import ConfigError
from staging.gate.signing import SignatureState, verify
from staging.gate.store import StoreError, VerdictStore, app_dir_of, gate_target, is_conclusive
from staging.workspace import TreeInfo

TREE = TreeInfo(hash="a" * 40, commit="c" * 40, dirty=False, files=3)


def test_record_is_keyed_by_tree_and_the_newest_replaces(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path)
    path = store.record(make_verdict(TREE, "passed", run_id="r1"))
    assert path == tmp_path / ".staging" / "verdicts" / f"{TREE.hash}.json"
    store.record(make_verdict(TREE, "failed", run_id="r2"))
    loaded = store.load(TREE.hash)
    assert loaded is not None and loaded["run_id"] == "r2" and loaded["status"] == "failed"
    assert (tmp_path / ".staging" / ".gitignore").read_text() == "*\n"


def test_record_without_a_tree_stores_nothing(tmp_path: Path) -> None:
    verdict = make_verdict(TREE, "aborted")
    verdict["tree"] = None
    assert VerdictStore(tmp_path).record(verdict) is None
    assert not (tmp_path / ".staging" / "verdicts").exists()


def test_record_signs_when_given_a_key(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path)
    store.record(make_verdict(TREE), key=b"key!")
    loaded = store.load(TREE.hash)
    assert loaded is not None and verify(loaded, b"key!") is SignatureState.VALID


def test_unsafe_tree_hash_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        VerdictStore(tmp_path).verdict_path("../../etc/passwd")


def test_corrupt_verdict_is_a_store_error(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path)
    store.verdicts_dir.mkdir(parents=True)
    store.verdict_path(TREE.hash).write_text("{not json")
    with pytest.raises(StoreError) as info:
        store.load(TREE.hash)
    assert "not valid JSON" in info.value.message


def test_last_green_only_from_a_passed_run(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path)
    assert store.set_last_green(make_verdict(TREE, "failed"), settings=None) is None
    assert store.last_green() is None
    store.set_last_green(make_verdict(TREE, run_id="r9"), settings={"fields": {}})
    green = store.last_green()
    assert green is not None
    assert (green["tree"], green["run_id"], green["settings"]) == (TREE.hash, "r9", {"fields": {}})


def test_runs_newest_first_including_incomplete_ones(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path)
    for run_id, status in (
        ("20250101-000000-aaaaaa", "passed"),
        ("20250102-000000-bbbbbb", "failed"),
    ):
        d = store.runs_dir / run_id
        d.mkdir(parents=True)
        (d / "verdict.json").write_text(json.dumps(make_verdict(TREE, status, run_id=run_id)))
    (store.runs_dir / "20250103-000000-cccccc").mkdir()
    runs = store.runs()
    assert [r.status for r in runs] == ["incomplete", "failed", "passed"]
    assert runs[1].failure_class == "settings.secret_missing"
    assert store.run().run_id == "20250103-000000-cccccc"
    assert store.run("20250102").run_id == "20250102-000000-bbbbbb"
    with pytest.raises(StoreError, match="ambiguous"):
        store.run("2025")
    with pytest.raises(StoreError, match="not found"):
        store.run("1999")


def test_no_runs_is_an_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        VerdictStore(tmp_path).run()
    assert "staging run" in info.value.hint


def test_app_dir_from_pyproject_and_environment(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.staging]\napp_dir = "svc"\n')
    assert app_dir_of(tmp_path, {}) == (tmp_path / "svc").resolve()
    assert app_dir_of(tmp_path, {"STAGING_APP_DIR": "other"}) == (tmp_path / "other").resolve()


def test_app_dir_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no pyproject\.toml"):
        app_dir_of(tmp_path, {})
    (tmp_path / "pyproject.toml").write_text('[tool.staging]\napp_dir = "missing"\n')
    with pytest.raises(ConfigError, match="not a directory"):
        app_dir_of(tmp_path, {})


@pytest.mark.parametrize(
    ("klass", "exit_code"),
    [
        ("config.invalid", 2),
        ("services.unavailable", 2),
        ("services.lost", 2),
        ("environment.unwritable", 2),
        ("internal.error", 2),
        ("interrupted", 130),
        ("interrupted", 143),
    ],
)
def test_an_aborted_or_interrupted_run_keeps_the_previous_record(
    tmp_path: Path, klass: str, exit_code: int
) -> None:
    store = VerdictStore(tmp_path)
    store.record(make_verdict(TREE, "passed", run_id="green"))
    aborted = make_verdict(
        TREE,
        "aborted",
        run_id="aborted",
        diagnosis={"class": klass, "cause": "Postgres exited", "evidence": [], "hint": "h"},
    )
    aborted["exit_code"] = exit_code
    assert not is_conclusive(aborted)
    assert store.record(aborted) is None
    kept = store.load(TREE.hash)
    assert kept is not None and kept["run_id"] == "green"


def test_an_aborted_run_of_a_new_tree_records_nothing(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path)
    assert store.record(make_verdict(TREE, "aborted")) is None
    assert store.load(TREE.hash) is None


def test_a_status_and_exit_code_that_disagree_are_not_conclusive() -> None:
    odd = make_verdict(TREE, "failed")
    odd["exit_code"] = 2  # an infrastructure exit, whatever the status says
    assert not is_conclusive(odd)
    assert is_conclusive(make_verdict(TREE, "failed")) and is_conclusive(make_verdict(TREE))


def test_a_partial_pass_does_not_replace_a_complete_pass(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path)
    both = ("greet", "everflow")
    store.record(make_verdict(TREE, run_id="full", configured=both))
    assert store.record(make_verdict(TREE, run_id="part", configured=both, ran=("greet",))) is None
    assert store.load(TREE.hash)["run_id"] == "full"  # type: ignore[index]
    # A partial failure is still a failure of this code; a full pass replaces a partial one.
    partial_red = make_verdict(TREE, "failed", run_id="red", configured=both, ran=("greet",))
    assert store.record(partial_red) is not None
    assert store.record(make_verdict(TREE, run_id="part2", configured=both, ran=("greet",)))
    assert store.record(make_verdict(TREE, run_id="full2", configured=both)) is not None
    assert store.load(TREE.hash)["run_id"] == "full2"  # type: ignore[index]


def test_gate_target_reads_the_settings_path(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.staging]\napp_dir = "app"\n[tool.staging.settings]\npath = "config/prod.env"\n'
    )
    assert gate_target(tmp_path, {}) == ((tmp_path / "app").resolve(), "config/prod.env")
    assert gate_target(tmp_path, {"STAGING_SETTINGS_PATH": "x.env"})[1] == "x.env"
    (tmp_path / "pyproject.toml").write_text("[tool.staging]\n")
    assert gate_target(tmp_path, {})[1] == ".env"


def test_a_partial_pass_is_not_the_last_green(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path)
    partial = make_verdict(TREE, run_id="part", configured=("a", "b"), ran=("a",))
    assert store.set_last_green(partial, settings=None) is None
    assert store.set_last_green(make_verdict(TREE, run_id="full"), settings=None) is not None
