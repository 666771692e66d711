"""Discovery from source text only: settings classes, workers, workflows, setup, roots."""

from __future__ import annotations

import textwrap
from pathlib import Path

from staging.init.discover import discover
from staging.init.pyfiles import import_roots, module_name


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


SETTINGS = """
    from pydantic import BaseModel, Field, SecretStr
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Temporal(BaseModel):
        address: str = "localhost:7233"
        namespace: str = "default"

    class Base(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="APP_", env_nested_delimiter="__")
        task_queue: str = "jobs"

    class Settings(Base):
        model_config = SettingsConfigDict(env_file=".env.prod")
        database_url: str = "postgresql://localhost/app"
        temporal: Temporal = Temporal()
        hook: str = Field("", validation_alias="SLACK_HOOK")
        openai_api_key: SecretStr | None = None
        token: str = ""
"""

WORKER = """
    import asyncio
    from temporalio.worker import Worker
    from app.settings import Settings

    async def main():
        s = Settings()
        async with Worker(client, task_queue=s.task_queue, workflows=[Job]):
            pass

    if __name__ == "__main__":
        asyncio.run(main())
"""

WORKFLOWS = """
    from dataclasses import dataclass
    from temporalio import workflow

    @workflow.defn
    class Job:
        @workflow.run
        async def run(self, name: str, retries: int = 3) -> None: ...

    @workflow.defn(name="custom-report")
    class Report:
        @workflow.run
        async def run(self, request: "ReportRequest") -> None: ...
"""


TEST_WORKER = "from temporalio.worker import Worker\nWorker(c, task_queue='t')\n"


def test_settings_class_with_inherited_config_nested_model_and_alias(tmp_path: Path) -> None:
    d = discover(write(tmp_path, {"src/app/__init__.py": "", "src/app/settings.py": SETTINGS}))
    assert d.roots == ["src"]
    assert d.settings is not None and d.settings.target == "app.settings:Settings"
    assert d.settings.env_file == ".env.prod"
    envs = {m.field.env: m.placeholder for m in d.mapped}
    assert envs == {
        "APP_TASK_QUEUE": None,
        "APP_DATABASE_URL": "{postgres.url}",
        "APP_TEMPORAL__ADDRESS": "{temporal.address}",
        "APP_TEMPORAL__NAMESPACE": "{temporal.namespace}",
        "SLACK_HOOK": "{capture.webhook}",  # the alias, without the prefix
        "APP_OPENAI_API_KEY": None,
        "APP_TOKEN": None,
    }
    assert d.optional_secrets == ["openai_api_key"]
    # `token: str = ""` is secret-like, cannot be None, and staging has no value for it
    assert any("token" in u for u in d.undecided)


def test_worker_queue_from_a_settings_default_and_workflow_arguments(tmp_path: Path) -> None:
    d = discover(
        write(
            tmp_path,
            {
                "app/__init__.py": "",
                "app/settings.py": SETTINGS,
                "app/worker.py": WORKER,
                "app/workflows.py": WORKFLOWS,
                "tests/test_worker.py": TEST_WORKER,
            },
        )
    )
    assert [(w.file.module, w.task_queue) for w in d.workers] == [("app.worker", "jobs")]
    by_type = {w.type_name: w for w in d.workflows}
    assert by_type["Job"].args() == ["staging"]  # a simple type is filled, the default kept
    assert by_type["custom-report"].args() is None  # a custom type is a TODO
    assert any("custom-report" in u and "request" in u for u in d.undecided)


def test_single_file_main_switch_and_module_constant(tmp_path: Path) -> None:
    app = """
        import sys
        from temporalio import worker
        QUEUE = "pings"
        def serve():
            worker.Worker(client, task_queue=QUEUE)
        if __name__ == "__main__":
            {"worker": serve, "start": print}[sys.argv[1]]()
    """
    d = discover(write(tmp_path, {"app.py": app}))
    (site,) = d.workers
    assert (site.file.module, site.task_queue, site.main_arg) == ("app", "pings", "worker")


def test_setup_steps_and_histories(tmp_path: Path) -> None:
    write(tmp_path, {"alembic.ini": "[alembic]\n", "tests/histories/a.json": "{}"})
    d = discover(tmp_path)
    assert [s.command for s in d.setup] == [["python", "-m", "alembic", "upgrade", "heads"]]
    assert d.histories == ["tests/histories/*.json"]
    (tmp_path / "alembic.ini").unlink()
    write(tmp_path, {"pkg/__init__.py": "", "pkg/migrate.py": "if __name__ == '__main__': pass\n"})
    assert [s.command for s in discover(tmp_path).setup] == [["python", "-m", "pkg.migrate"]]
    (tmp_path / "pkg" / "migrate.py").unlink()
    write(tmp_path, {"sql/001.sql": "create table t (x int);"})
    (step,) = discover(tmp_path).setup
    assert step.needs_dsn and step.command[-1] == "sql"


def test_import_roots_from_each_build_backend(tmp_path: Path) -> None:
    cases = [
        ({"tool": {"setuptools": {"packages": {"find": {"where": ["lib"]}}}}}, ["lib"]),
        ({"tool": {"setuptools": {"package-dir": {"": "code"}}}}, ["code"]),
        ({"tool": {"hatch": {"build": {"targets": {"wheel": {"packages": ["src/x"]}}}}}}, ["src"]),
        ({"tool": {"poetry": {"packages": [{"include": "x", "from": "lib"}]}}}, ["lib"]),
        ({"tool": {"pdm": {"build": {"package-dir": "src"}}}}, ["src"]),
        ({}, ["."]),
    ]
    for pyproject, roots in cases:
        assert import_roots(tmp_path, pyproject)[0] == roots, pyproject
    assert module_name(Path("lib/x/y.py"), ["lib"]) == "x.y"
    assert module_name(Path("lib/x/__init__.py"), ["lib"]) == "x"
    assert module_name(Path("other/x.py"), ["lib"]) is None


def test_never_imports_the_app(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    bomb = f"open({str(marker)!r}, 'w').close()\n" + textwrap.dedent(SETTINGS)
    discover(write(tmp_path, {"app/__init__.py": bomb, "app/settings.py": bomb}))
    assert not marker.exists()
