"""Probes: standalone scripts staging runs inside the app's own interpreter, and their reports.

The scripts import nothing from `staging` (the app's interpreter may not have it installed);
`run_probe` runs the settings probe by path and parses its JSON into a typed `ProbeReport`.
`staging.preflight` judges the report.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from staging.probes.runner import run_probe_script
from staging.redact import Redactor

if TYPE_CHECKING:
    from staging.forkserver.client import ForkServer

SETTINGS_PROBE = Path(__file__).resolve().parent / "settings_probe.py"


@dataclass(frozen=True)
class FieldError:
    loc: str
    msg: str
    type: str


@dataclass(frozen=True)
class ProbeError:
    type: str
    message: str
    errors: tuple[FieldError, ...] = ()
    traceback: str = ""


@dataclass(frozen=True)
class ModelConfigReport:
    env_file: str | list[str] | None = None
    env_prefix: str = ""
    env_nested_delimiter: str | None = None
    secrets_dir: str | list[str] | None = None
    case_sensitive: bool = False
    env_file_encoding: str | None = None
    extra: str | None = None

    @property
    def env_files(self) -> list[str]:
        return _as_list(self.env_file)

    @property
    def secrets_dirs(self) -> list[str]:
        return _as_list(self.secrets_dir)

    def summary(self) -> str:
        return (
            f"model_config: env_file={self.env_file!r} env_prefix={self.env_prefix!r} "
            f"env_nested_delimiter={self.env_nested_delimiter!r} secrets_dir={self.secrets_dir!r} "
            f"case_sensitive={self.case_sensitive} extra={self.extra!r}"
        )


@dataclass(frozen=True)
class FieldReport:
    name: str  # nested model fields are "parent.child"
    annotation: str
    is_secret: bool
    required: bool
    value: str | None  # redacted by the probe
    empty: bool
    source: str  # init | environment | dotenv | secrets_dir | default | <custom source name>
    source_detail: str = ""
    default: str | None = None
    aliases: tuple[str, ...] = ()
    env_names: tuple[str, ...] = ()
    host: str | None = None
    port: int | None = None
    staging_required: bool = False


@dataclass(frozen=True)
class DotenvReport:
    path: str
    exists: bool
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeReport:
    """What the probe saw. `stderr_tail` is the app's raw output: redact before showing."""

    ok: bool
    error: ProbeError | None
    model_config: ModelConfigReport | None
    fields: list[FieldReport] = field(default_factory=list)
    dotenv: list[DotenvReport] = field(default_factory=list)
    settings_class: str = ""
    sources: tuple[str, ...] = ()  # in priority order
    unknown_required: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    stderr_tail: str = ""

    def field(self, name: str) -> FieldReport | None:
        return next((f for f in self.fields if f.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, stderr_tail: str = "") -> ProbeReport:
        error = data.get("error")
        config = data.get("model_config")
        return cls(
            ok=bool(data.get("ok")),
            error=None if not error else _probe_error(error),
            model_config=None
            if not config
            else ModelConfigReport(**_known(ModelConfigReport, config)),
            fields=[_field_report(f) for f in data.get("fields") or ()],
            dotenv=[
                DotenvReport(str(d["path"]), bool(d.get("exists")), tuple(d.get("names") or ()))
                for d in data.get("dotenv") or ()
            ],
            settings_class=str(data.get("settings_class") or ""),
            sources=tuple(str(s) for s in data.get("sources") or ()),
            unknown_required=tuple(str(s) for s in data.get("unknown_required") or ()),
            warnings=tuple(str(s) for s in data.get("warnings") or ()),
            stderr_tail=stderr_tail,
        )

    @classmethod
    def failed(cls, settings_class: str, kind: str, message: str, tail: str = "") -> ProbeReport:
        error = ProbeError(type=kind, message=message, traceback=tail)
        return cls(False, error, None, settings_class=settings_class, stderr_tail=tail)


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _known(kind: Any, data: Mapping[str, Any], tuples: Collection[str] = ()) -> dict[str, Any]:
    """The keys `kind` declares: a newer probe may report more than this side knows."""
    names = kind.__dataclass_fields__
    return {k: tuple(v) if k in tuples else v for k, v in data.items() if k in names}


def _probe_error(data: Mapping[str, Any]) -> ProbeError:
    errors = tuple(
        FieldError(str(e.get("loc", "")), str(e.get("msg", "")), str(e.get("type", "")))
        for e in data.get("errors") or ()
    )
    return ProbeError(
        type=str(data.get("type") or "Error"),
        message=str(data.get("message") or ""),
        errors=errors,
        traceback=str(data.get("traceback") or ""),
    )


def _field_report(data: Mapping[str, Any]) -> FieldReport:
    return FieldReport(**_known(FieldReport, data, tuples=("aliases", "env_names")))


def run_probe(
    python: str,
    cwd: Path,
    env: Mapping[str, str],
    settings_class: str,
    required: Sequence[str],
    *,
    timeout: float = 60,
    redactor: Redactor | None = None,
    forkserver: ForkServer | None = None,
) -> ProbeReport:
    """Run the probe in `python` with cwd=`cwd` and exactly `env`; never raises for app faults."""
    run = run_probe_script(
        SETTINGS_PROBE,
        ["--settings", settings_class, "--required", ",".join(required)],
        python=python,
        cwd=cwd,
        env=env,
        timeout=timeout,
        redactor=redactor,
        tmp_prefix="staging-probe-",
        forkserver=forkserver,
        needs=("pydantic_settings",),  # not temporalio: the settings alone decide the preflight
    )
    if run.data is None:
        failure = run.failure(f"loading {settings_class}", "the settings probe")
        return ProbeReport.failed(settings_class, *failure)
    return ProbeReport.from_json(run.data, stderr_tail=run.stderr_tail)


__all__ = [
    "SETTINGS_PROBE",
    "DotenvReport",
    "FieldError",
    "FieldReport",
    "ModelConfigReport",
    "ProbeError",
    "ProbeReport",
    "run_probe",
]
