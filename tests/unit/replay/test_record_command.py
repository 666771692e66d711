"""`staging record`: where histories go (not the deployed tree unless asked), via `run --record`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import staging.commands.record as record
from staging.cli import main
from staging.context import RunOptions
from staging.history_export import RECORD_DEFAULT, RecordTarget, record_target, recorded_lines


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["tests/histories/*.json"], "tests/histories"),
        (["histories/**/*.json", "other/*.json"], "histories"),
        (["*.json", "replays/prod-*.json"], "replays"),
        (["*.json"], "tests/histories"),
        ([], "tests/histories"),
    ],
)
def test_default_dir(patterns: list[str], expected: str) -> None:
    app = Path("/srv/app")
    assert record.default_dir(app, patterns) == app / expected


PYPROJECT = (
    '[tool.staging]\n[tool.staging.worker]\ncommand = ["python", "-m", "w"]\n'
    'task_queue = "q"\n[tool.staging.replay]\nhistories = ["recorded/*.json"]\n'
)


def _fake_run(seen: list[RunOptions]) -> Callable[[RunOptions], int]:
    def fake_run(options: RunOptions) -> int:
        seen.append(options)
        assert options.record_dir is not None
        options.record_dir.mkdir(parents=True)
        (options.record_dir / "wf-1.json").write_text("{}")
        return 0

    return fake_run


def test_record_writes_outside_the_deployed_tree_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    seen: list[RunOptions] = []
    monkeypatch.setattr(record, "run_staging", _fake_run(seen))
    assert main(["record", "--project", str(tmp_path), "--backend", "process"]) == 0
    (options,) = seen
    dest = (tmp_path / ".staging" / "histories").resolve()
    assert options.record_dir == dest
    assert options.overrides == {"backend": "process"}
    out = capsys.readouterr().out
    assert f"1 history file(s) in {dest}" in out and "wf-1.json" in out


def test_record_into_app_writes_where_replay_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    seen: list[RunOptions] = []
    monkeypatch.setattr(record, "run_staging", _fake_run(seen))
    assert main(["record", "--project", str(tmp_path), "--into-app"]) == 0
    assert main(["record", "--project", str(tmp_path), "--into-app", "replays"]) == 0
    assert [o.record_dir for o in seen] == [
        (tmp_path / "recorded").resolve(),
        (tmp_path / "replays").resolve(),
    ]


def test_record_target_says_whether_the_tree_changes(tmp_path: Path) -> None:
    app = tmp_path / "app"
    default = record_target(app, None)
    assert default == RecordTarget((app / ".staging" / "histories").resolve(), in_app=False)
    assert record_target(app, RECORD_DEFAULT) == default  # `staging run --record`
    assert record_target(app, app / "tests" / "histories").in_app is True
    assert record_target(app, app / ".staging" / "mine").in_app is False
    assert record_target(app, tmp_path / "elsewhere").in_app is False


def test_recorded_lines_say_where_and_what_it_does_to_the_gate(tmp_path: Path) -> None:
    files = [tmp_path / "wf-1.json"]
    inside = recorded_lines(RecordTarget(tmp_path / "tests" / "histories", True), files)
    assert inside[0] == f"recorded 1 workflow history file(s) in {tmp_path}/tests/histories"
    assert "`staging gate` stays closed until staging runs on it again" in inside[1]
    outside = recorded_lines(RecordTarget(tmp_path / ".staging" / "histories", False), files)
    assert "the gate is unaffected" in outside[1] and "--into-app" in outside[1]
    assert len(recorded_lines(RecordTarget(tmp_path, True), [])) == 1


def test_run_record_without_dir_means_the_default(tmp_path: Path) -> None:
    from staging.cli import build_parser

    args = build_parser(only="run").parse_args(["run", "--record"])
    assert args.record == RECORD_DEFAULT
    args = build_parser(only="run").parse_args(["run", "--record", "out"])
    assert args.record == Path("out")
