"""The core that makes any app shape run: what runs is the workspace copy, in the app's
own interpreter, with per-command working directories, process variables and several
workers.

One small src-layout Temporal app, written into a git repo under tmp_path, with its own
`.venv` (found by `python = ""`) in which the app's package is also installed
"editable" (a `.pth` pointing at the checkout's `src/`, what `pip install -e .` leaves
behind in many setups). Three runs on the process backend (about 10-15 s each):

- green: two workers on two task queues (one in a `cwd`), a workflow pipeline per queue,
  a `process_env` variable the worker requires, and the editable install present but
  not winning: the run header names the app's venv, every module came from the copy;
- a git-ignored top-level module the settings import, which only the editable install
  provides: `workspace.shadowed`, naming the module and where it came from;
- a git-ignored submodule: the worker fails as a fresh clone would, naming the module.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.process, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

SETTINGS = """\
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
{extra_import}

class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_prefix="SHOP_")
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    database_url: SecretStr = SecretStr("")
"""

WORKFLOWS = """\
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def count(name: str) -> str:
    return f"counted {name}"


@workflow.defn
class Count:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            count, name, start_to_close_timeout=timedelta(seconds=10)
        )
"""

WORKER = """\
import asyncio
import os
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from shop.settings import Settings
from shop.workflows import Count, count
{extra_import}

async def main(queue: str) -> None:
    if os.environ.get("SHOP_MODE") != "staging":  # a process variable, not a setting
        sys.exit("SHOP_MODE is not set")
    settings = Settings()
    client = await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace
    )
    worker = Worker(client, task_queue=queue, workflows=[Count], activities=[count])
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
"""

PYPROJECT = """\
[project]
name = "shop"
version = "0.1"

[tool.setuptools.packages.find]
where = ["src"]

[tool.staging]
timeout = 240

[tool.staging.settings]
class = "shop.settings:Settings"
delivery = "environ"  # the billing worker runs in ops/billing: a .env would not be there

[tool.staging.env]
SHOP_TEMPORAL_ADDRESS = "{temporal.address}"
SHOP_TEMPORAL_NAMESPACE = "{temporal.namespace}"
SHOP_DATABASE_URL = "{postgres.url}"

[tool.staging.process_env]
SHOP_MODE = "staging"

[[tool.staging.workers]]
name = "orders"
command = ["python", "-m", "shop.worker", "orders"]
task_queue = "orders"

[[tool.staging.workers]]
name = "billing"
command = ["python", "../../run_worker.py", "billing"]
task_queue = "billing"
cwd = "ops/billing"

[[tool.staging.pipelines]]
name = "orders"
workflow = "Count"
args = ["orders"]

[[tool.staging.pipelines]]
name = "billing"
workflow = "Count"
args = ["billing"]
task_queue = "billing"
"""


def git(app: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=app, check=True, capture_output=True)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_app(root: Path, *, settings_import: str = "", worker_import: str = "") -> Path:
    app = root / "shop"
    write(app / "pyproject.toml", PYPROJECT)
    write(app / ".gitignore", ".venv/\n.staging/\n.env\nsrc/shop_dev.py\nsrc/shop/local.py\n")
    write(app / "src" / "shop" / "__init__.py", "")
    write(app / "src" / "shop" / "settings.py", SETTINGS.format(extra_import=settings_import))
    write(app / "src" / "shop" / "workflows.py", WORKFLOWS)
    write(app / "src" / "shop" / "worker.py", WORKER.format(extra_import=worker_import))
    # A script run from a subdirectory: it finds `shop` only through the import roots.
    write(
        app / "run_worker.py",
        "import runpy\nrunpy.run_module('shop.worker', run_name='__main__')\n",
    )
    write(app / "ops" / "billing" / "README", "the billing worker runs here\n")
    # Developer-only files, git-ignored, so never deployed.
    write(app / "src" / "shop_dev.py", "DEV = True\n")
    write(app / "src" / "shop" / "local.py", "LOCAL = True\n")
    git(app, "init", "-q")
    git(app, "add", "-A")
    git(app, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "app")
    _venv_with_editable_install(app)
    return app


def _venv_with_editable_install(app: Path) -> None:
    """The app's own venv: this interpreter's libraries, plus the checkout's src "editable"."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(app / ".venv")],
        check=True,
        capture_output=True,
    )
    lib = next((app / ".venv" / "lib").glob("python3*")) / "site-packages"
    write(lib / "libraries.pth", "\n".join(site.getsitepackages()) + "\n")
    write(lib / "__editable__.shop-0.1.pth", str(app / "src") + "\n")


def run(app: Path, state: Path) -> tuple[int, dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["STAGING_STATE_DIR"] = str(state)
    done = subprocess.run(
        [sys.executable, "-m", "staging", "run", "--project", str(app), "--backend", "process"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    runs = sorted((app / ".staging" / "runs").iterdir())
    verdict = json.loads((runs[-1] / "verdict.json").read_text(encoding="utf-8"))
    return done.returncode, verdict, done.stdout + done.stderr


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A private state dir that Postgres (as nobody, when the harness is root) can reach."""
    directory = Path(tempfile.mkdtemp(prefix="stg-shapes-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_green_src_layout_two_workers_in_the_apps_venv(tmp_path: Path, state: Path) -> None:
    app = make_app(tmp_path)

    code, verdict, output = run(app, state)

    assert code == 0, output
    assert "found the app's .venv/" in output
    assert "polling task queue 'orders'" in output and "'billing'" in output, output
    worker = next(p for p in verdict["phases"] if p["name"] == "worker")
    # shop, shop.settings, shop.workflows, shop.worker: each checked, none from the checkout.
    assert worker["details"]["app_modules_checked"] >= 4
    pipelines = {p["name"]: p["status"] for p in verdict["pipelines"]}
    assert pipelines == {"orders": "passed", "billing": "passed"}


def test_an_ignored_module_found_through_the_editable_install_is_shadowed(
    tmp_path: Path, state: Path
) -> None:
    app = make_app(tmp_path, settings_import="import shop_dev  # noqa: F401")

    code, verdict, output = run(app, state)

    assert code == 1, output
    assert verdict["diagnosis"]["class"] == "workspace.shadowed", output
    assert f"'shop_dev' was imported from {app / 'src' / 'shop_dev.py'}" in output
    assert "an editable install of your checkout" in output
    assert "-m pip uninstall shop" in output


def test_an_ignored_submodule_fails_as_a_fresh_clone_would(tmp_path: Path, state: Path) -> None:
    app = make_app(tmp_path, worker_import="import shop.local  # noqa: F401")

    code, verdict, output = run(app, state)

    assert code == 1, output
    assert verdict["diagnosis"]["class"] == "worker.crashed", output
    assert "No module named 'shop.local'" in output
