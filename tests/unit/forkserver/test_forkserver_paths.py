"""The workspace's import roots and the module-origin hook, forked and cold alike.

A command forked from the fork server must see the same `sys.path` and record the same
module origins as the same command started cold with the same environment: the roots
from PYTHONPATH first, staging's hook directory never visible, the hook's variables
removed from the environment, and each app module's file recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from staging.forkserver import ForkedProcess, ForkServer
from staging.probes.origins import HOOK_DIR, origins_env, outside, read_origins
from staging.workspace.hermetic import hermetic_env

PY = sys.executable
CAP = 30.0

# Imports the app's package and reports what it sees.
MAIN = """\
import json
import os
import sys

import shop.orders

json.dump(
    {
        "path": sys.path,
        "env": sorted(os.environ),
        "orders": shop.orders.__file__,
        "meta_path": [type(f).__name__ for f in sys.meta_path],
    },
    sys.stdout,
)
"""


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """An app with a src layout (src/shop) and an entry module at its root."""
    app = tmp_path / "app"
    (app / "src" / "shop").mkdir(parents=True)
    (app / "src" / "shop" / "__init__.py").write_text("", encoding="utf-8")
    (app / "src" / "shop" / "orders.py").write_text("", encoding="utf-8")
    (app / "entry.py").write_text(MAIN, encoding="utf-8")
    return {"app": app, "src": app / "src", "tmp": tmp_path}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ForkServer]:
    started = ForkServer.start(
        PY, env=hermetic_env(PY), cwd=tmp_path, preload=["colorsys"], log_path=tmp_path / "fs.log"
    )
    yield started
    started.close()


def _env(layout: dict[str, Path], out: Path) -> dict[str, str]:
    out.mkdir()
    watch = origins_env(out, {"shop"}, home=layout["app"])
    return hermetic_env(PY, extra=watch, python_path=[layout["src"], HOOK_DIR])


def _cold(layout: dict[str, Path], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [PY, "-m", "entry"], cwd=layout["app"], env=env, capture_output=True, timeout=CAP
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _forked(server: ForkServer, layout: dict[str, Path], env: dict[str, str]) -> dict[str, Any]:
    argv = [PY, "-m", "entry"]
    target = server.accepts(argv, env=env, cwd=layout["app"])
    assert target is not None, "PYTHONPATH alone must not make the server refuse"
    child = ForkedProcess.start(
        server, target, argv, cwd=layout["app"], env=env, merge_stderr=False
    )
    out, err = child.communicate(timeout=CAP)
    assert child.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.mark.parametrize("mode", ["cold", "forked"])
def test_roots_come_first_and_the_hook_stays_invisible(
    mode: str, layout: dict[str, Path], server: ForkServer
) -> None:
    out = layout["tmp"] / "origins"
    env = _env(layout, out)
    seen = _cold(layout, env) if mode == "cold" else _forked(server, layout, env)

    assert seen["path"][:2] == [str(layout["app"]), str(layout["src"])]
    assert str(HOOK_DIR) not in seen["path"]
    assert not [name for name in seen["env"] if name.startswith("STAGING_ORIGINS")]
    assert seen["orders"] == str(layout["src"] / "shop" / "orders.py")
    assert seen["meta_path"][0] == "_Recorder"

    recorded = {o.module: o.origin for o in read_origins(out)}
    assert recorded == {
        "shop": str(layout["src"] / "shop" / "__init__.py"),
        "shop.orders": str(layout["src"] / "shop" / "orders.py"),
    }


def test_a_module_from_outside_the_workspace_is_recorded_as_such(
    layout: dict[str, Path], tmp_path: Path
) -> None:
    """The shape of an editable install: the checkout's src found before the copy's."""
    checkout = tmp_path / "checkout"
    (checkout / "shop").mkdir(parents=True)
    (checkout / "shop" / "__init__.py").write_text("", encoding="utf-8")
    (checkout / "shop" / "orders.py").write_text("", encoding="utf-8")
    out = tmp_path / "origins"
    env = _env(layout, out)
    env["PYTHONPATH"] = os.pathsep.join([str(checkout), env["PYTHONPATH"]])

    _cold(layout, env)

    bad = outside(read_origins(out), layout["app"])
    assert [(o.module, o.origin) for o in bad] == [
        ("shop", str(checkout / "shop" / "__init__.py")),
        ("shop.orders", str(checkout / "shop" / "orders.py")),
    ]


def test_the_shadowed_sitecustomize_still_runs(layout: dict[str, Path], tmp_path: Path) -> None:
    """The hook is itself a `sitecustomize`: the interpreter's own one must run after it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nos.environ['OWN_SITE'] = '1'\n")
    out = tmp_path / "origins"
    env = _env(layout, out)
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(site)])

    seen = _cold(layout, env)

    assert "OWN_SITE" in seen["env"]
    assert read_origins(out), "the hook recorded nothing"
