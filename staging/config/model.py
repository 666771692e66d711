"""The validated shape of `[tool.staging]` (see ARCHITECTURE.md, "The user's contract").

Keys are the users' interface: add freely, never rename without keeping the old key.
Unknown keys are errors (`extra="forbid"`), so a typo never silently disables a check.
Durations are seconds.
"""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Backend = Literal["auto", "docker", "process"]
Delivery = Literal["dotenv", "environ", "secrets_dir"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def inside_app(value: str) -> str:
    """A path relative to the app dir that stays inside it (checked again on disk by the run)."""
    normal = posixpath.normpath(value.replace("\\", "/")) if value else "."
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        raise ValueError(
            f"expected a directory inside the app dir, relative to it (like 'src' or 'worker'), "
            f"got {value!r}"
        )
    return normal


def _env_name_errors(names: Any) -> None:
    for name in names:
        if (
            not name
            or not (name[0].isalpha() or name[0] == "_")
            or not all(c.isalnum() or c == "_" for c in name)
        ):
            raise ValueError(f"{name!r} is not a valid environment variable name")


class _InApp(_Strict):
    # The command's working directory, relative to the app dir (in the workspace copy).
    cwd: str = "."

    @field_validator("cwd")
    @classmethod
    def _cwd_inside_app(cls, value: str) -> str:
        return inside_app(value)


class PostgresConfig(_Strict):
    image: str = "postgres:16-alpine"
    database: str = "app"
    user: str = "app"


class TemporalConfig(_Strict):
    image: str = "temporalio/temporal:latest"
    namespace: str = "default"


class SettingsConfig(_Strict):
    class_: str = Field(default="", alias="class")  # "package.module:Settings"; "" = no preflight
    delivery: Delivery = "dotenv"
    path: str = ".env"
    required: list[str] = Field(default_factory=list)
    # Secret-like fields that may stay unset (an optional API key); checked against the
    # class's fields by the preflight, which is where the fields are known.
    optional: list[str] = Field(default_factory=list)

    @field_validator("class_")
    @classmethod
    def _module_colon_name(cls, value: str) -> str:
        if value and (value.count(":") != 1 or not all(value.split(":"))):
            raise ValueError(f"expected 'package.module:ClassName', got {value!r}")
        return value


class SetupStep(_InApp):
    name: str
    command: list[str] = Field(min_length=1)
    timeout: float = Field(default=120, gt=0)


class WorkerConfig(_InApp):
    # Names the worker in logs and diagnoses; [[tool.staging.workers]] default to the task
    # queue, the single [tool.staging.worker] to "worker".
    name: str = ""
    command: list[str] = Field(min_length=1)
    task_queue: str
    ready_timeout: float = Field(default=30, gt=0)
    stop_grace: float = Field(default=5, ge=0)
    # Worker processes polling the queue, as production runs N machines (issue 15).
    replicas: int = Field(default=1, ge=1)
    # kill -9 one replica while each activity type runs (`staging run --chaos`).
    interrupt: bool = False


class PipelineConfig(_InApp):
    name: str
    command: list[str] | None = None
    workflow: str | None = None  # workflow type started by the harness
    args: list[Any] = Field(default_factory=list)
    task_queue: str | None = None  # defaults to the (first) worker's
    timeout: float = Field(default=120, gt=0)
    checks: list[str] = Field(default_factory=list)
    max_notifications: int | None = Field(default=None, ge=0)
    # An activity failing this many times with the same error is "stuck retrying".
    stuck_after: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _one_trigger(self) -> PipelineConfig:
        if (self.command is None) == (self.workflow is None):
            raise ValueError("a pipeline needs exactly one of 'command' or 'workflow'")
        if self.command is not None and not self.command:
            raise ValueError("'command' must not be empty")
        return self


class ReplayConfig(_Strict):
    histories: list[str] = Field(default_factory=list)  # globs relative to the app
    workflows: list[str] = Field(default_factory=list)  # "module:Class"; [] = discover


class RolloutConfig(_Strict):
    """`[tool.staging.rollout]`: rehearse the deploy from the last green tree to this one."""

    enabled: bool = False
    strategy: Literal["rolling", "immediate"] = "rolling"
    # When to swap: "halfway", {after_activity = "X"} or {after_events = N}.
    at: Literal["halfway"] | dict[Literal["after_activity", "after_events"], str | int] = "halfway"
    # Seconds an in-flight workflow may go without a new history event after the swap.
    stuck_after: float = Field(default=30, gt=0)

    @field_validator("at")
    @classmethod
    def _one_point(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) != 1:
                raise ValueError(
                    'expected one of {after_activity = "X"} or {after_events = N}, '
                    f"got {value!r}"
                )
            ((key, point),) = value.items()
            if key == "after_events" and (not isinstance(point, int) or point < 1):
                raise ValueError(f"after_events must be an integer >= 1, got {point!r}")
            if key == "after_activity" and (not isinstance(point, str) or not point):
                raise ValueError(f"after_activity must be an activity type name, got {point!r}")
        return value


class StagingConfig(_Strict):
    app_dir: str = "."
    python: str = ""
    # App commands fork from that interpreter, started ahead with `preload` (on top of
    # pydantic_settings and temporalio) imported; false = a fresh interpreter per command.
    prestart: bool = True
    preload: list[str] = Field(default_factory=list)
    # Import roots of the app, relative to app_dir, put first on every app process's path
    # (PYTHONPATH); None = worked out from the app's pyproject (staging.workspace.roots).
    python_path: list[str] | None = None
    backend: Backend = "auto"
    timeout: float = Field(default=300, gt=0)
    postgres: PostgresConfig = Field(default_factory=PostgresConfig)
    temporal: TemporalConfig = Field(default_factory=TemporalConfig)
    settings: SettingsConfig = Field(default_factory=SettingsConfig)
    env: dict[str, str] = Field(default_factory=dict)
    # Process variables every app process gets whatever the delivery (PYTHONPATH additions,
    # a settings-module switch): not settings, so the preflight does not check them.
    process_env: dict[str, str] = Field(default_factory=dict)
    setup: list[SetupStep] = Field(default_factory=list)
    # One worker ([tool.staging.worker]) or several ([[tool.staging.workers]]), not both.
    # After validation `worker` is the first one and `workers` lists them all.
    worker: WorkerConfig
    workers: list[WorkerConfig] = Field(default_factory=list)
    pipelines: list[PipelineConfig] = Field(default_factory=list)
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    # `staging run --chaos`: `interrupt = true` for every worker.
    chaos: bool = False
    # Checks written in Python: pytest paths inside the app, run in the checks phase with
    # staging's pytest plugin attached to the run's live services.
    tests: list[str] = Field(default_factory=list)

    @field_validator("env", "process_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        _env_name_errors(value)
        return value

    @field_validator("tests")
    @classmethod
    def _tests_inside_app(cls, value: list[str]) -> list[str]:
        return [inside_app(v) for v in value]

    @field_validator("python_path")
    @classmethod
    def _roots_inside_app(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("expected at least one directory (leave the key out to detect it)")
        return None if value is None else [inside_app(v) for v in value]

    @model_validator(mode="before")
    @classmethod
    def _one_worker_form(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "workers" not in data:
            return data
        if "worker" in data:
            raise ValueError(
                "give either one [tool.staging.worker] table or a [[tool.staging.workers]] "
                "list, not both"
            )
        workers = data["workers"]
        if not isinstance(workers, list) or not workers:
            raise ValueError("[[tool.staging.workers]] needs at least one worker")
        # `worker` mirrors the first entry; when that entry is invalid its own errors
        # (under workers[0]) are the ones to report, so the mirror is a valid stand-in.
        first = workers[0]
        try:
            WorkerConfig.model_validate(first)
        except ValueError:
            first = {"command": ["python"], "task_queue": "-"}
        return {**data, "worker": first}

    @model_validator(mode="after")
    def _unique_names(self) -> StagingConfig:
        names = [p.name for p in self.pipelines]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pipeline names must be unique; repeated: {', '.join(dupes)}")
        both = sorted(set(self.env) & set(self.process_env))
        if both:
            raise ValueError(
                f"{', '.join(both)} is in both [tool.staging.env] (a setting, delivered and "
                "checked) and [tool.staging.process_env] (a process variable): keep one"
            )
        if not self.workers:
            self.worker.name = self.worker.name or "worker"
            self.workers = [self.worker]
        for worker in self.workers:
            worker.name = worker.name or worker.task_queue
        self.worker = self.workers[0]
        names = [w.name for w in self.workers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(
                f"worker names must be unique; repeated: {', '.join(dupes)} "
                "(give each [[tool.staging.workers]] entry its own name)"
            )
        return self
