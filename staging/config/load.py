"""Read `[tool.staging]` into one validated `StagingConfig`, remembering where each value came from.

Precedence is default < file < environment < command line. Every value records its
origin in `LoadedConfig.sources` under its dotted key ("postgres.image", "timeout",
"settings.class", "env.DB_HOST", "pipelines"): "default", "file",
"env:STAGING_POSTGRES_IMAGE" or "cli".

Environment overrides (strings, coerced by the model like TOML values):

- `STAGING_APP_DIR`, `STAGING_PYTHON`, `STAGING_PRESTART`, `STAGING_BACKEND`,
  `STAGING_TIMEOUT`
- `STAGING_<SECTION>_<KEY>` for every scalar key of the sections postgres, temporal,
  settings and worker, e.g. `STAGING_POSTGRES_IMAGE`, `STAGING_TEMPORAL_NAMESPACE`,
  `STAGING_SETTINGS_CLASS`, `STAGING_SETTINGS_DELIVERY`, `STAGING_WORKER_TASK_QUEUE`.
  An unknown `STAGING_<SECTION>_*` variable is an error (a typo must not silently leave
  the file's value in place); other `STAGING_*` variables are not config and are ignored.

Why plain tomllib + an explicit merge rather than pydantic-settings'
`PyprojectTomlConfigSettingsSource`: the model is a plain `BaseModel` (not a
`BaseSettings`), pydantic-settings records no per-value provenance, reports TOML syntax
errors without the file, and its env source would accept any `STAGING_*` spelling
silently. Here each layer is a dict we own, so provenance and error messages are exact.
The wording of validation errors lives in `staging.config.problems`.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import sys
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from staging.config.model import (
    PostgresConfig,
    SettingsConfig,
    StagingConfig,
    TemporalConfig,
    WorkerConfig,
)
from staging.config.problems import WORKER_EXAMPLE

# `X as X`: also re-exported, for callers that imported these from here before problems.py.
from staging.config.problems import Problem as Problem
from staging.config.problems import nearest as nearest
from staging.config.problems import problems_from_validation as problems_from_validation
from staging.config.problems import raise_problems as raise_problems
from staging.config.problems import redact_observed as redact_observed
from staging.config.render import validate_templates
from staging.errors import ConfigError

ENV_PREFIX = "STAGING_"
_TOP_LEVEL_ENV = ("app_dir", "python", "prestart", "backend", "timeout")
_SECTIONS: dict[str, type[BaseModel]] = {
    "postgres": PostgresConfig,
    "temporal": TemporalConfig,
    "settings": SettingsConfig,
    "worker": WorkerConfig,
}


@dataclass
class LoadedConfig:
    config: StagingConfig
    pyproject: Path
    project_dir: Path
    app_dir: Path
    python: str
    sources: dict[str, str] = field(default_factory=dict)

    def source_of(self, key: str) -> str:
        """The origin of a dotted key, falling back to its nearest recorded parent."""
        return _source_for(self.sources, key)


def load_config(
    project: Path,
    *,
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Read, merge and validate `[tool.staging]`; raise `ConfigError` naming key and file."""
    environ = os.environ if environ is None else environ
    pyproject = _find_pyproject(Path(project))
    table = _read_table(pyproject)

    merged: dict[str, Any] = copy.deepcopy(table)
    sources: dict[str, str] = {}
    for key, value in table.items():
        _record(sources, key, value, "file")
    for key, (value, origin) in _env_layer(environ, pyproject).items():
        _set_dotted(merged, key, value)
        _record(sources, key, value, origin)
    for key, value in (cli or {}).items():
        if value is None:  # argparse leaves unset flags as None
            continue
        _set_dotted(merged, key, value)
        _record(sources, key, value, "cli")

    try:
        config = StagingConfig.model_validate(merged)
    except ValidationError as exc:
        raise_problems(
            problems_from_validation(exc, lambda key: _source_for(sources, key)),
            pyproject,
            exc,
        )
    _record_defaults(config, sources)
    validate_templates(config.env, source=str(pyproject))

    project_dir = pyproject.parent
    return LoadedConfig(
        config=config,
        pyproject=pyproject,
        project_dir=project_dir,
        app_dir=_resolve_app_dir(config.app_dir, project_dir, pyproject, sources),
        python=_resolve_python(config.python, project_dir, pyproject, sources, environ),
        sources=sources,
    )


def _find_pyproject(project: Path) -> Path:
    pyproject = project / "pyproject.toml" if project.is_dir() else project
    if not pyproject.is_file():
        raise ConfigError(
            f"no pyproject.toml at {pyproject}",
            expected="a project directory containing pyproject.toml, or the file's path",
            observed=f"{project} ({'a directory' if project.is_dir() else 'not found'})",
            hint="pass --project pointing at the app's project directory "
            "(the one whose pyproject.toml has [tool.staging])",
        )
    return pyproject.resolve()


def _read_table(pyproject: Path) -> dict[str, Any]:
    text = pyproject.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"at line (\d+), column (\d+)", str(exc))
        position, source_line = "the file", ""
        if where:
            line_no = int(where.group(1))
            position = f"line {line_no}, column {where.group(2)}"
            lines = text.splitlines()
            source_line = lines[line_no - 1] if 0 < line_no <= len(lines) else ""
        evidence = [f"{pyproject}:{position}: {source_line}"] if source_line else []
        raise ConfigError(
            f"{pyproject} is not valid TOML ({position})",
            expected="valid TOML",
            observed=f"{exc}: {source_line}" if source_line else str(exc),
            evidence=evidence,
            hint=f"fix the TOML syntax at {position} of {pyproject} "
            "(strings need quotes, lists need brackets)",
        ) from exc
    tool = data.get("tool", {})
    table = tool.get("staging") if isinstance(tool, dict) else None
    if table is None:
        raise ConfigError(
            f"{pyproject} has no [tool.staging] table",
            expected="a [tool.staging] table describing the worker and pipelines",
            observed=f"tables: {', '.join(sorted(data)) or 'none'}",
            hint=f"add to {pyproject}:\n[tool.staging]\n\n{WORKER_EXAMPLE}",
        )
    if not isinstance(table, dict):
        raise ConfigError(
            f"tool.staging in {pyproject} is not a table",
            expected="a table: [tool.staging]",
            observed=f"{type(table).__name__}: {table!r}"[:120],
            hint="write [tool.staging] as a table header followed by key = value lines",
        )
    return table


def env_override_names() -> dict[str, str]:
    """`STAGING_*` variable name -> the dotted key it overrides."""
    names = {f"{ENV_PREFIX}{key.upper()}": key for key in _TOP_LEVEL_ENV}
    for section, model in _SECTIONS.items():
        for name, info in model.model_fields.items():
            if typing.get_origin(info.annotation) in (list, dict):
                continue
            key = info.alias or name
            names[f"{ENV_PREFIX}{section.upper()}_{key.upper()}"] = f"{section}.{key}"
    return names


def _env_layer(environ: Mapping[str, str], pyproject: Path) -> dict[str, tuple[str, str]]:
    known = env_override_names()
    layer: dict[str, tuple[str, str]] = {}
    for var in sorted(environ):
        if var in known:
            layer[known[var]] = (environ[var], f"env:{var}")
            continue
        section = next((s for s in _SECTIONS if var.startswith(f"{ENV_PREFIX}{s.upper()}_")), None)
        if section is not None:
            candidates = [n for n in known if n.startswith(f"{ENV_PREFIX}{section.upper()}_")]
            raise ConfigError(
                f"unknown environment override {var} for tool.staging.{section} "
                f"(config file {pyproject})",
                expected=f"one of {', '.join(sorted(candidates))}",
                observed=var,
                hint=nearest(var, candidates, quote=False)
                + "unset it, or use a supported STAGING_* override",
            )
    return layer


def _set_dotted(dest: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        child = dest.get(part)
        if not isinstance(child, dict):
            child = {}
            dest[part] = child
        dest = child
    if isinstance(value, Mapping) and isinstance(dest.get(last), dict):
        for sub, sub_value in value.items():
            _set_dotted(dest[last], sub, sub_value)
    else:
        dest[last] = dict(value) if isinstance(value, Mapping) else value


def _record(sources: dict[str, str], key: str, value: Any, origin: str) -> None:
    if isinstance(value, Mapping) and value:
        for sub, sub_value in value.items():
            _record(sources, f"{key}.{sub}", sub_value, origin)
    else:
        sources[key] = origin


def _record_defaults(model: BaseModel, sources: dict[str, str], prefix: str = "") -> None:
    for name, info in type(model).model_fields.items():
        key = f"{prefix}{info.alias or name}"
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            _record_defaults(value, sources, f"{key}.")
        elif not any(k == key or k.startswith(f"{key}.") for k in sources):
            sources[key] = "default"


def _source_for(sources: Mapping[str, str], key: str) -> str:
    key = re.sub(r"\[\d+\]", "", key)
    while key:
        if key in sources:
            return sources[key]
        key = key.rpartition(".")[0]
    return "file"


def _resolve_app_dir(
    value: str, project_dir: Path, pyproject: Path, sources: Mapping[str, str]
) -> Path:
    app_dir = (project_dir / value).resolve()
    if not app_dir.is_dir():
        raise_problems(
            [
                Problem(
                    key="tool.staging.app_dir",
                    origin=_source_for(sources, "app_dir"),
                    what="the app directory does not exist",
                    expected=f"a directory relative to {project_dir}",
                    observed=f"{value!r} -> {app_dir} "
                    f"({'not a directory' if app_dir.exists() else 'missing'})",
                    hint="set app_dir to the app's root relative to the pyproject.toml "
                    '(usually ".")',
                )
            ],
            pyproject,
        )
    return app_dir


def _resolve_python(
    value: str,
    project_dir: Path,
    pyproject: Path,
    sources: Mapping[str, str],
    environ: Mapping[str, str],
) -> str:
    if not value:
        return sys.executable
    if os.sep in value or "/" in value:
        candidate = (project_dir / value).expanduser()
        found = str(candidate.absolute()) if _is_executable(candidate) else None
    else:
        found = shutil.which(value, path=environ.get("PATH", os.defpath))
    if found is None:
        origin = _source_for(sources, "python")
        raise_problems(
            [
                Problem(
                    key="tool.staging.python",
                    origin=origin,
                    what="the interpreter for the app's commands was not found",
                    expected="an executable path (relative to the project) or a name on PATH",
                    observed=repr(value),
                    hint="create the venv (e.g. python -m venv .venv) and set python = "
                    '".venv/bin/python", or leave python = "" to use staging\'s own',
                )
            ],
            pyproject,
        )
    return found


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
