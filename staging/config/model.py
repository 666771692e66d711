"""The validated shape of `[tool.staging]` (see ARCHITECTURE.md, "The user's contract").

Keys are the users' interface: add freely, never rename without keeping the old key.
Unknown keys are errors (`extra="forbid"`), so a typo never silently disables a check.
Durations are seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Backend = Literal["auto", "docker", "process"]
Delivery = Literal["dotenv", "environ", "secrets_dir"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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

    @field_validator("class_")
    @classmethod
    def _module_colon_name(cls, value: str) -> str:
        if value and (value.count(":") != 1 or not all(value.split(":"))):
            raise ValueError(f"expected 'package.module:ClassName', got {value!r}")
        return value


class SetupStep(_Strict):
    name: str
    command: list[str] = Field(min_length=1)
    timeout: float = Field(default=120, gt=0)


class WorkerConfig(_Strict):
    command: list[str] = Field(min_length=1)
    task_queue: str
    ready_timeout: float = Field(default=30, gt=0)
    stop_grace: float = Field(default=5, ge=0)


class PipelineConfig(_Strict):
    name: str
    command: list[str] | None = None
    workflow: str | None = None  # workflow type started by the harness
    args: list[Any] = Field(default_factory=list)
    task_queue: str | None = None  # defaults to the worker's
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


class StagingConfig(_Strict):
    app_dir: str = "."
    python: str = ""
    # App commands fork from that interpreter, started ahead with `preload` (on top of
    # pydantic_settings and temporalio) imported; false = a fresh interpreter per command.
    prestart: bool = True
    preload: list[str] = Field(default_factory=list)
    backend: Backend = "auto"
    timeout: float = Field(default=300, gt=0)
    postgres: PostgresConfig = Field(default_factory=PostgresConfig)
    temporal: TemporalConfig = Field(default_factory=TemporalConfig)
    settings: SettingsConfig = Field(default_factory=SettingsConfig)
    env: dict[str, str] = Field(default_factory=dict)
    setup: list[SetupStep] = Field(default_factory=list)
    worker: WorkerConfig
    pipelines: list[PipelineConfig] = Field(default_factory=list)
    replay: ReplayConfig = Field(default_factory=ReplayConfig)

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if (
                not name
                or not (name[0].isalpha() or name[0] == "_")
                or not all(c.isalnum() or c == "_" for c in name)
            ):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> StagingConfig:
        names = [p.name for p in self.pipelines]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pipeline names must be unique; repeated: {', '.join(dupes)}")
        return self
