"""`staging gate` end to end on a real temporary git repository, with synthetic verdicts.

No services: the verdicts are written through the store API, the tree hash is the real
one (`git write-tree` over a temporary index).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from staging.commands import gate
from staging.gate.coverage import Coverage
from staging.gate.store import VerdictStore
from staging.workspace import TreeInfo, tree_hash

KEY = "gate key with spaces: p@ss/%#'\""

PYPROJECT = """\
[tool.staging]
app_dir = "."

[tool.staging.worker]
command = ["python", "-m", "tiny.worker"]
task_queue = "tiny"
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    repo = tmp_path / "repo"
    (repo / "tiny").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(PYPROJECT)
    (repo / "tiny" / "__init__.py").write_text("")
    (repo / "tiny" / "settings.py").write_text("ENV_FILE = '.env'\n")
    (repo / "tiny" / "worker.py").write_text("print('worker')\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "initial")
    monkeypatch.delenv("STAGING_GATE_KEY", raising=False)
    monkeypatch.delenv("STAGING_APP_DIR", raising=False)
    yield repo


def _verdict(
    tree: TreeInfo, status: str, run_id: str, ran: tuple[str, ...] = ("tiny", "tiny-2")
) -> dict[str, Any]:
    diagnosis = None
    if status != "passed":
        diagnosis = {
            "class": "db.auth_failed",
            "cause": "Postgres rejected the app's credentials",
            "evidence": [],
            "hint": "check env_file",
        }
    coverage = Coverage.of_run(("tiny", "tiny-2"), ran, {"replay": "skipped", "checks": "passed"})
    return {
        "schema": 2,
        "run_id": run_id,
        "status": status,
        "exit_code": 0 if status == "passed" else 1,
        "coverage": coverage.to_dict(),
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T00:01:00+00:00",
        "tree": {"hash": tree.hash, "commit": tree.commit, "dirty": tree.dirty},
        "phases": [],
        "pipelines": [],
        "settings": {},
        "diagnosis": diagnosis,
    }


def record(
    app: Path,
    status: str,
    run_id: str = "run-1",
    key: str | None = None,
    ran: tuple[str, ...] = ("tiny", "tiny-2"),
    settings_path: str = ".env",
) -> None:
    verdict = _verdict(tree_hash(app, settings_path), status, run_id, ran)
    store = VerdictStore(app)
    store.record(verdict, key=key.encode() if key else None)
    if status == "passed":
        store.set_last_green(verdict, settings=None)


def staging_gate(app: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="staging")
    gate.add_parser(parser.add_subparsers(dest="name", required=True))
    args = parser.parse_args(["gate", "--project", str(app), *argv])
    return gate.run(args)


def test_green_tree_opens(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record(app, "passed")
    assert staging_gate(app) == 0
    assert "OPEN" in capsys.readouterr().err


def test_one_byte_changed_closes_and_names_the_file(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(app, "passed", run_id="green-1")
    settings = app / "tiny" / "settings.py"
    settings.write_bytes(settings.read_bytes().replace(b"'.env'", b"'.enw'"))
    assert staging_gate(app) == 1
    err = capsys.readouterr().err
    assert "no staging run for this code" in err
    assert "M tiny/settings.py" in err and "green-1" in err


def test_an_untracked_file_changes_the_tree_but_the_store_does_not(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(app, "passed")
    (app / ".staging" / ".gitignore").unlink()  # as after a CI artifact download
    assert staging_gate(app) == 0
    (app / "tiny" / "new_module.py").write_text("X = 1\n")
    assert staging_gate(app) == 1
    assert "A tiny/new_module.py" in capsys.readouterr().err


def test_red_verdict_closes_with_class_and_stop(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(app, "failed", run_id="red-1")
    assert staging_gate(app) == 1
    err = capsys.readouterr().err
    assert "db.auth_failed: Postgres rejected the app's credentials" in err
    assert "STOP: read the diagnosis (`staging report red-1`)" in err


def test_signed_verdict_opens_with_require_signature(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record(app, "passed", key=KEY)
    monkeypatch.setenv("STAGING_GATE_KEY", KEY)
    assert staging_gate(app, "--require-signature") == 0
    out = capsys.readouterr()
    assert KEY not in out.err + out.out


def test_unsigned_verdict_rejected_with_require_signature(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record(app, "passed")
    monkeypatch.setenv("STAGING_GATE_KEY", KEY)
    assert staging_gate(app, "--require-signature") == 1
    assert "not signed" in capsys.readouterr().err


def test_tampered_verdict_rejected(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record(app, "failed", key=KEY)
    path = VerdictStore(app).verdict_path(tree_hash(app).hash)
    verdict = json.loads(path.read_text())
    verdict["status"] = "passed"
    verdict["diagnosis"] = None
    path.write_text(json.dumps(verdict))
    monkeypatch.setenv("STAGING_GATE_KEY", KEY)
    assert staging_gate(app, "--require-signature") == 1
    assert "does not match its signature" in capsys.readouterr().err


def test_command_runs_when_open_and_its_exit_code_passes_through(app: Path) -> None:
    record(app, "passed")
    assert staging_gate(app, "--", sys.executable, "-c", "import sys; sys.exit(7)") == 7
    assert staging_gate(app, "--", sys.executable, "-c", "pass") == 0


def test_command_does_not_run_when_closed(app: Path, tmp_path: Path) -> None:
    record(app, "failed")
    marker = tmp_path / "deployed"
    script = f"open({str(marker)!r}, 'w').close()"
    assert staging_gate(app, "--", sys.executable, "-c", script) == 1
    assert not marker.exists()
    record(app, "passed", run_id="run-2")
    assert staging_gate(app, "--", sys.executable, "-c", script) == 0
    assert marker.exists()


def test_missing_command_is_127(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record(app, "passed")
    assert staging_gate(app, "--", "no-such-deploy-tool-xyz", "deploy") == 127
    assert "no-such-deploy-tool-xyz" in capsys.readouterr().err


def test_killed_command_reports_128_plus_signal(app: Path) -> None:
    record(app, "passed")
    code = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    assert staging_gate(app, "--", sys.executable, "-c", code) == 128 + 15


def test_the_real_command_line(app: Path) -> None:
    """`python -m staging gate -- CMD`: argument parsing, stderr and exit codes end to end."""
    repo_root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    env.pop("STAGING_GATE_KEY", None)
    argv = [sys.executable, "-m", "staging", "gate", "--project", str(app), "--"]
    deploy = [sys.executable, "-c", "import sys; print('deploying'); sys.exit(7)"]
    closed = subprocess.run([*argv, *deploy], env=env, capture_output=True, text=True)
    assert closed.returncode == 1 and "deploying" not in closed.stdout
    assert "no staging run for this code" in closed.stderr
    record(app, "passed")
    opened = subprocess.run([*argv, *deploy], env=env, capture_output=True, text=True)
    assert (opened.returncode, opened.stdout) == (7, "deploying\n")
    assert "OPEN" in opened.stderr


def test_key_set_no_flag_and_an_unsigned_edited_verdict_closes(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: with STAGING_GATE_KEY set, signatures are required by default."""
    record(app, "failed", key=KEY)
    path = VerdictStore(app).verdict_path(tree_hash(app).hash)
    verdict = json.loads(path.read_text())
    del verdict["signature"]
    verdict.update(status="passed", exit_code=0, diagnosis=None)
    path.write_text(json.dumps(verdict))
    monkeypatch.setenv("STAGING_GATE_KEY", KEY)
    assert staging_gate(app) == 1
    err = capsys.readouterr().err
    assert "not signed and STAGING_GATE_KEY is set" in err and "--allow-unsigned" in err
    assert KEY not in err
    # The escape: accept it knowingly. A signature that does not verify is never accepted.
    assert staging_gate(app, "--allow-unsigned") == 0
    verdict["signature"] = "hmac-sha256:" + "0" * 64
    path.write_text(json.dumps(verdict))
    assert staging_gate(app, "--allow-unsigned") == 1


def test_require_signature_and_allow_unsigned_exclude_each_other(app: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        staging_gate(app, "--require-signature", "--allow-unsigned")
    assert exc.value.code == 2


def test_a_partial_run_closes_and_names_the_missing_pipeline(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(app, "passed", run_id="part-1", ran=("tiny",))
    assert staging_gate(app, "--", sys.executable, "-c", "raise SystemExit(9)") == 1
    err = capsys.readouterr().err
    assert "partial run: 1 of 2 pipelines" in err and "pipelines not run: tiny-2" in err
    record(app, "passed", run_id="full-1")
    assert staging_gate(app) == 0


def test_a_tracked_dotfile_is_part_of_the_tree(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (app / ".env.production").write_text("FEATURE=on\n")
    _git(app, "add", "-f", ".env.production")
    _git(app, "commit", "-q", "-m", "production settings")
    record(app, "passed")
    assert staging_gate(app) == 0
    (app / ".env.production").write_text("FEATURE=off\n")
    assert staging_gate(app) == 1
    assert "M .env.production" in capsys.readouterr().err


def test_the_delivered_settings_path_is_left_out_and_named(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = app / "pyproject.toml"
    pyproject.write_text(PYPROJECT + '\n[tool.staging.settings]\npath = "config/app.env"\n')
    (app / "config").mkdir()
    (app / "config" / "app.env").write_text("DB_PASSWORD=committed\n")
    _git(app, "add", "-A")
    _git(app, "commit", "-q", "-m", "a committed settings file")
    record(app, "passed", settings_path="config/app.env")
    assert staging_gate(app) == 0
    assert "tracked but not part of this tree" in capsys.readouterr().err
    (app / "config" / "app.env").write_text("DB_PASSWORD=edited\n")
    assert staging_gate(app) == 0  # staging writes its own file there: not the code
