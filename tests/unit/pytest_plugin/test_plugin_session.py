"""The plugin in a real pytest process: loaded by its entry point, inert unless asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _pytest(
    where: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STAGING_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rsf", *args],
        cwd=where,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_importing_the_plugin_imports_nothing_else() -> None:
    code = (
        "import sys; before = set(sys.modules); import staging.pytest_plugin; "
        "print(sorted(set(sys.modules) - before))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['staging', 'staging.pytest_plugin']"


def test_a_suite_without_its_fixtures_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "import pytest\n\n"
        "def test_plain():\n    assert 1 + 1 == 2\n\n"
        "@pytest.mark.staging_check\n"
        "def test_live_only(staging_services):\n    raise AssertionError('must not run')\n"
    )
    done = _pytest(tmp_path, "--strict-markers")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout, done.stdout
    assert "checks phase of `staging run`" in done.stdout
    assert not (tmp_path / ".staging").exists()  # no session was started
