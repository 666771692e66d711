"""One shared "cluster" for every attach test (started once per session, outside staging)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gallery.shapes import commit_all
from tests.integration.attach.cluster import SHARED_NAMESPACE, Cluster, running_cluster

APP = Path(__file__).resolve().parent / "app"
ADMIN_ENV = "TALLY_PG_ADMIN_URL"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running


def make_project(
    cluster: Cluster,
    dest: Path,
    *,
    namespace: str = SHARED_NAMESPACE,
    prefix: str = "",
    rows: int = 1,
) -> Path:
    """A git repository holding the tally app, attached to `cluster`; its check expects
    `rows` rows (1 is green)."""
    dest.mkdir(parents=True)
    shutil.copy(APP / "tally.py", dest / "tally.py")
    shutil.copy(APP / "gitignore.in", dest / ".gitignore")
    line = f'namespace_prefix = "{prefix}"' if prefix else f'namespace = "{namespace}"'
    text = (APP / "pyproject.toml.in").read_text()
    text = text.replace("@TEMPORAL_ADDRESS@", cluster.temporal_address)
    text = text.replace("select count(*) = 1 from tally", f"select count(*) = {rows} from tally")
    (dest / "pyproject.toml").write_text(text.replace("@NAMESPACE_LINE@", line))
    commit_all(dest, "tally")
    return dest


def staging_run(
    project: Path, cluster: Cluster, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`staging run` as a user runs it, attached to `cluster` (not waited for)."""
    environ = {**os.environ, ADMIN_ENV: cluster.admin_url, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "staging", "run", "--project", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environ,
        start_new_session=True,
    )
