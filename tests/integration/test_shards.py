"""`staging run --shard K/N` then `staging gate`, as the CI matrix runs them.

The app (tests/integration/apps/four-pipelines) has four pipelines. Shard 1/2 and shard
2/2 run on the process backend in two separate clones of one commit ("two CI machines",
about 5-10 s each), signing with STAGING_GATE_KEY; a third clone (the deploy job) gets
their gate records the way examples/ci/github-actions.yml carries them (every shard's
.staging/verdicts/ merged into its own), and `staging gate --require-signature` decides.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parent / "apps" / "four-pipelines"
PIPELINES = {"alpha", "beta", "gamma", "delta"}
KEY = "shard key: p@ss/%#'\" with spaces"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _staging(*args: str, state: Path, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "STAGING_GATE_KEY")}
    env["STAGING_STATE_DIR"] = str(state)
    if key is not None:
        env["STAGING_GATE_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "staging", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _verdict(app: Path) -> dict[str, Any]:
    (run,) = (app / ".staging" / "runs").iterdir()
    data: dict[str, Any] = json.loads((run / "verdict.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture
def state() -> Iterator[Path]:
    """A private state dir that Postgres (as nobody, when the harness is root) can reach."""
    directory = Path(tempfile.mkdtemp(prefix="stg-shards-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def machines(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Three checkouts of one commit: shard 1's machine, shard 2's, the deploy job's."""
    first = tmp_path / "shard-1" / "quad"
    shutil.copytree(APP, first, ignore=shutil.ignore_patterns(".staging", "__pycache__", ".env"))
    _git(first, "init", "-q", "-b", "main")
    _git(first, "add", "-A")
    _git(first, "commit", "-q", "-m", "quad")
    others = []
    for name in ("shard-2", "deploy"):
        clone = tmp_path / name / "quad"
        subprocess.run(["git", "clone", "-q", str(first), str(clone)], check=True)
        others.append(clone)
    return first, others[0], others[1]


@pytest.mark.process
@pytest.mark.slow
def test_two_shards_on_two_machines_open_the_gate_together_only(
    machines: tuple[Path, Path, Path], state: Path
) -> None:
    first, second, deploy = machines
    verdicts = []
    for k, app in ((1, first), (2, second)):
        done = _staging(
            "run", "--project", str(app), "--backend", "process", "--shard", f"{k}/2", state=state
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"shard {k}/2: partial run: 2 of 4 pipelines" in done.stdout
        verdicts.append(_verdict(app))
    ran = [set(v["coverage"]["ran"]) for v in verdicts]
    assert ran[0] | ran[1] == PIPELINES and not ran[0] & ran[1], ran
    assert verdicts[0]["shard"]["fingerprint"] == verdicts[1]["shard"]["fingerprint"]
    assert KEY not in json.dumps(verdicts)

    gate = ("gate", "--project", str(deploy), "--require-signature")
    store = deploy / ".staging" / "verdicts"
    # Only shard 1's record arrived: closed, naming the shard and pipelines it lacks.
    shutil.copytree(first / ".staging" / "verdicts", store, dirs_exist_ok=True)
    done = _staging(*gate, state=state)
    assert done.returncode == 1, done.stderr
    missing = ", ".join(sorted(ran[1], key=["alpha", "beta", "gamma", "delta"].index))
    assert f"pipelines no verdict ran: {missing}" in done.stderr
    assert f"missing: shard 2/2 ({missing})" in done.stderr
    assert "Hint: run `staging run --shard 2/2`" in done.stderr

    # Both records merged: open, signatures verified.
    shutil.copytree(second / ".staging" / "verdicts", store, dirs_exist_ok=True)
    done = _staging(*gate, state=state)
    assert done.returncode == 0, done.stderr
    assert "staging gate: OPEN" in done.stderr and "(signatures verified)" in done.stderr
    assert "shard 1/2" in done.stderr and "shard 2/2" in done.stderr

    # Another key (a verdict signed elsewhere) never opens it.
    done = _staging(*gate, state=state, key="another key")
    assert done.returncode == 1 and "does not match its signature" in done.stderr


@pytest.mark.process
def test_more_shards_than_pipelines_is_refused_before_any_service_starts(
    machines: tuple[Path, Path, Path], state: Path
) -> None:
    first, _, _ = machines
    done = _staging(
        "run", "--project", str(first), "--backend", "process", "--shard", "5/5", state=state
    )
    assert done.returncode == 2, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "config.invalid" in output
    assert "4 pipeline(s) cannot fill 5 shards" in output and "use N <= 4" in output
    assert "services" not in [p["name"] for p in _verdict(first)["phases"]]
