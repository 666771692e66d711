from __future__ import annotations

import json
from pathlib import Path

import pytest
from gate_helpers import make_verdict

from staging.errors import ConfigError
from staging.gate.signing import SignatureState, verify
from staging.gate.store import StoreError, VerdictStore, app_dir_of
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
