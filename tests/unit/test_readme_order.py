"""The README's commands in order: `nox -s staging`, then `nox -s tests`, on one checkout.

`nox -s staging` leaves `examples/everflow/.staging/` (runs, verdicts, last-green). The
corpus tests then copied it along with the example, and
`test_materialize_leaves_out_env_and_caches` died with FileExistsError. Here the example
gets such a state dir (entries of our own, removed afterwards: another run may own the
rest) and the corpus tests that copy the example run in a fresh interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.corpus import APP, REPO


@pytest.fixture
def example_state() -> Iterator[Path]:
    state = APP / ".staging"
    tag = f"readme-order-{os.getpid()}"
    run = state / "runs" / f"20260101-000000-{tag}"
    verdict = state / "verdicts" / f"{tag}.json"
    run.mkdir(parents=True)
    verdict.parent.mkdir(parents=True, exist_ok=True)
    try:
        (run / "logs").mkdir()
        (run / "verdict.json").write_text(json.dumps({"status": "passed", "run_id": tag}))
        verdict.write_text("{}")
        yield state
    finally:
        for path in sorted(run.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        run.rmdir()
        verdict.unlink()
        # Empty directories only (a concurrent test of the same kind may have made them;
        # a real run's .staging holds its .gitignore, so it is never empty).
        for path in (state / "verdicts", state / "runs", state):
            with contextlib.suppress(OSError):
                path.rmdir()


def test_the_corpus_tests_pass_with_the_examples_staging_dir(example_state: Path) -> None:
    assert any((example_state / "runs").iterdir())
    selected = "materialize or patch_applies or good_is_the_app"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-k", selected,
         "tests/unit/test_corpus.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
