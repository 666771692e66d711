"""The validated shape of `[tool.staging]` (see ARCHITECTURE.md, "The user's contract").

Keys are the users' interface: add freely, never rename without keeping the old key.
Unknown keys are errors (`extra="forbid"`), so a typo never silently disables a check.
Durations are seconds.
"""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from staging.services import images
from staging.services.backends import backend_choices
from staging.services.generic_config import ServiceConfig, check_services

# "auto" or a backend registered in staging.services.backends (checked by `_known_backend`).
Backend = str
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
    image: str = images.POSTGRES  # the one default, shared with ServiceSpec and the kind
    database: str = "app"
    user: str = "app"


class TemporalConfig(_Strict):
    image: str = images.TEMPORAL
    namespace: str = "default"


class AttachConfig(_Strict):
    """`[tool.staging.attach]`: services that already exist (`backend = "attach"`).

    Secrets never sit in the file: each `*_env` key names the environment variable that
    holds the value (the API key, the Postgres admin URL) or a path (the TLS files).
    """

    temporal_address: str = ""  # host:port of the frontend
    namespace: str = ""  # an existing, shared namespace ...
    namespace_prefix: str = ""  # ... or one created per run, named <prefix><run id>
    api_key_env: str = ""
    tls: bool | None = None  # None: TLS when a TLS file or an API key is given
    tls_cert_env: str = ""  # client certificate (mTLS), with tls_key_env
    tls_key_env: str = ""
    tls_ca_env: str = ""  # the CA of the server's certificate; "" = system roots
    tls_server_name: str = ""
    postgres_admin_url_env: str = ""  # postgresql://admin:...@host:port/postgres
    # A run on another host is presumed dead `timeout + lease_margin` seconds after it
    # started (a pid is checked only on the owner's own host): then a sweep removes its
    # database, role, workflows and namespace.
    lease_margin: float = Field(default=600, ge=0)

    @field_validator(
        "api_key_env", "tls_cert_env", "tls_key_env", "tls_ca_env", "postgres_admin_url_env"
    )
    @classmethod
    def _env_name(cls, value: str) -> str:
        if value:
            _env_name_errors([value])
        return value

    @model_validator(mode="after")
    def _coherent(self) -> AttachConfig:
        if self.namespace and self.namespace_prefix:
            raise ValueError(
                "give either namespace (an existing, shared one) or namespace_prefix "
                "(one created per run), not both"
            )
        if bool(self.tls_cert_env) != bool(self.tls_key_env):
            raise ValueError("tls_cert_env and tls_key_env go together (mTLS needs both)")
        if self.tls is False and (self.tls_cert_env or self.tls_ca_env):
            raise ValueError("tls = false contradicts tls_cert_env / tls_ca_env")
        return self

    def missing(self) -> list[str]:
        """The keys `backend = "attach"` needs and this section lacks."""
        needed = {
            "temporal_address": self.temporal_address,
            "namespace or namespace_prefix": self.namespace or self.namespace_prefix,
            "postgres_admin_url_env": self.postgres_admin_url_env,
        }
        return [key for key, value in needed.items() if not value]


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
    attach: AttachConfig = Field(default_factory=AttachConfig)
    # [[tool.staging.services]]: generic services (Redis...) beside Postgres and Temporal.
    services: list[ServiceConfig] = Field(default_factory=list)
    # `staging run --chaos`: `interrupt = true` for every worker.
    chaos: bool = False
    # Checks written in Python: pytest paths inside the app, run in the checks phase with
    # staging's pytest plugin attached to the run's live services.
    tests: list[str] = Field(default_factory=list)
    # Configured task queue -> the name this run uses (`suffix_task_queues`).
    _run_queues: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        choices = backend_choices()
        if value not in choices:
            shown = ", ".join(repr(c) for c in choices)
            raise ValueError(f"Input should be one of {shown} (the registered backends)")
        return value

    @field_validator("services")
    @classmethod
    def _services_fit(cls, value: list[ServiceConfig], info: ValidationInfo) -> list[ServiceConfig]:
        # A field validator (backend, env and process_env come before it), so that an error
        # is reported under tool.staging.services rather than the whole table.
        tables = {table: info.data.get(table) or {} for table in ("env", "process_env")}
        check_services(value, info.data.get("backend", "auto"), tables)
        return value

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

    @model_validator(mode="after")
    def _attach_complete(self) -> StagingConfig:
        missing = self.attach.missing() if self.backend == "attach" else []
        if missing:
            raise ValueError(
                f'backend = "attach" needs [tool.staging.attach] {", ".join(missing)} '
                "(the services that already exist; secrets through *_env variable names)"
            )
        return self

    def task_queues(self) -> dict[str, str]:
        """Each configured task queue -> the name this run uses (itself unless suffixed)."""
        if self._run_queues:
            return dict(self._run_queues)
        names = [w.task_queue for w in self.workers]
        names += [p.task_queue for p in self.pipelines if p.task_queue]
        return {name: name for name in names}

    def suffix_task_queues(self, suffix: str) -> dict[str, str]:
        """Rename every task queue to `<queue><suffix>` for this run (in place, once).

        Runs sharing a namespace (`backend = "attach"`) never take each other's tasks; every
        phase reads the renamed queues from here, and the app gets them as a setting
        (`{worker.task_queue}`, `{task_queue.NAME}` in [tool.staging.env]).
        """
        if not self._run_queues:
            renamed = {name: name + suffix for name in self.task_queues()}
            self._run_queues = renamed
            for worker in self.workers:
                worker.task_queue = renamed[worker.task_queue]
            for pipeline in self.pipelines:
                if pipeline.task_queue:
                    pipeline.task_queue = renamed[pipeline.task_queue]
        return dict(self._run_queues)
