"""`staging record`: where histories go by default, and that it is `run --record`."""

from __future__ import annotations

from pathlib import Path

import pytest

import staging.commands.record as record
from staging.cli import main
from staging.context import RunOptions


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


def test_record_runs_staging_with_record_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.staging]\n[tool.staging.worker]\ncommand = ["python", "-m", "w"]\n'
        'task_queue = "q"\n[tool.staging.replay]\nhistories = ["recorded/*.json"]\n'
    )
    seen: list[RunOptions] = []

    def fake_run(options: RunOptions) -> int:
        seen.append(options)
        assert options.record_dir is not None
        options.record_dir.mkdir(parents=True)
        (options.record_dir / "wf-1.json").write_text("{}")
        return 0

    monkeypatch.setattr(record, "run_staging", fake_run)
    assert main(["record", "--project", str(tmp_path), "--backend", "process"]) == 0
    (options,) = seen
    assert options.record_dir == (tmp_path / "recorded").resolve()
    assert options.overrides == {"backend": "process"}
    out = capsys.readouterr().out
    assert f"recorded 1 history file(s) in {(tmp_path / 'recorded').resolve()}" in out
    assert "wf-1.json" in out
