"""Merge and validate `[tool.staging]` into one `StagingConfig`, remembering each value's origin.

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
The file is found and parsed by `staging.config.table`, the table's one reader; the
wording of validation errors lives in `staging.config.problems`.
"""

from __future__ import annotations

import copy
import os
import re
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from staging.config.interpreter import Interpreter, interpreter_problem, resolve_interpreter
from staging.config.model import (
    AttachConfig,
    PostgresConfig,
    SettingsConfig,
    StagingConfig,
    TemporalConfig,
    WorkerConfig,
)
from staging.config.paths import Boundary, confine, confine_glob

# `X as X`: also re-exported, for callers that imported these from here before problems.py.
from staging.config.problems import Problem as Problem
from staging.config.problems import nearest as nearest
from staging.config.problems import problems_from_validation as problems_from_validation
from staging.config.problems import raise_problems as raise_problems
from staging.config.problems import redact_observed as redact_observed
from staging.config.render import validate_templates
from staging.config.sql import NotOneStatement, single_statement
from staging.config.table import StagingTable, read_staging_table
from staging.errors import ConfigError

ENV_PREFIX = "STAGING_"
_TOP_LEVEL_ENV = ("app_dir", "python", "prestart", "backend", "timeout")
_SECTIONS: dict[str, type[BaseModel]] = {
    "postgres": PostgresConfig,
    "temporal": TemporalConfig,
    "settings": SettingsConfig,
    "worker": WorkerConfig,
    # CI points the same config at its cluster: STAGING_ATTACH_TEMPORAL_ADDRESS=...
    "attach": AttachConfig,
}


@dataclass
class LoadedConfig:
    config: StagingConfig
    pyproject: Path
    project_dir: Path
    app_dir: Path
    python: str
    sources: dict[str, str] = field(default_factory=dict)
    python_found: str = ""  # how `python = ""` found the app's own venv, for the config line

    def source_of(self, key: str) -> str:
        """The origin of a dotted key, falling back to its nearest recorded parent."""
        return _source_for(self.sources, key)


def load_config(
    project: Path | StagingTable,
    *,
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Read, merge and validate `[tool.staging]`; raise `ConfigError` naming key and file.

    `project`: the project dir or its pyproject.toml, or a table already read (the
    config phase's draft read it first)."""
    environ = os.environ if environ is None else environ
    read = read_staging_table(project)
    pyproject, table = read.pyproject, read.table

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
    if sources.get("workers", "default") != "default":  # `worker` mirrors workers[0]
        for key in [k for k in sources if k.startswith("worker.")]:
            sources[key] = sources["workers"]
    validate_templates(config.env, source=str(pyproject))
    validate_templates(config.process_env, source=str(pyproject), table="process_env")

    project_dir = pyproject.parent
    app_dir = _resolve_app_dir(config.app_dir, project_dir, pyproject, sources)
    _confine_paths(config, app_dir, pyproject, sources)
    _one_statement_checks(config, pyproject, sources)
    python = _resolve_python(config.python, project_dir, app_dir, pyproject, sources, environ)
    return LoadedConfig(
        config=config,
        pyproject=pyproject,
        project_dir=project_dir,
        app_dir=app_dir,
        python=python.path or sys.executable,
        sources=sources,
        python_found=python.found,
    )


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
    app_dir = confine(
        value,
        key="tool.staging.app_dir",
        base=project_dir,
        boundary=Boundary.of_project(pyproject),
        pyproject=pyproject,
        origin=_source_for(sources, "app_dir"),
    )
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


def _confine_paths(
    config: StagingConfig, app_dir: Path, pyproject: Path, sources: Mapping[str, str]
) -> None:
    """Paths the run reads or writes because the config named them stay in the project."""
    # Written into the workspace copy of the app dir: inside it, as written (no symlinks).
    confine(
        config.settings.path,
        key="tool.staging.settings.path",
        base=app_dir,
        boundary=Boundary(app_dir, f"the app dir {app_dir} (it is written into its copy)"),
        pyproject=pyproject,
        origin=_source_for(sources, "settings.path"),
        follow_symlinks=False,
    )
    project = Boundary.of_project(pyproject)
    for i, pattern in enumerate(config.replay.histories):
        confine_glob(
            pattern,
            key=f"tool.staging.replay.histories[{i}]",
            base=app_dir,
            boundary=project,
            pyproject=pyproject,
            origin=_source_for(sources, "replay.histories"),
        )


def _one_statement_checks(
    config: StagingConfig, pyproject: Path, sources: Mapping[str, str]
) -> None:
    """Each SQL check is one statement: known before any service starts, so `config.invalid`."""
    problems = []
    for i, pipeline in enumerate(config.pipelines):
        for j, check in enumerate(pipeline.checks):
            try:
                single_statement(check)
            except NotOneStatement as exc:
                problems.append(
                    Problem(
                        key=f"tool.staging.pipelines[{i}].checks[{j}]",
                        origin=_source_for(sources, "pipelines"),
                        what=f"a SQL check must be exactly one statement; {exc}",
                        expected="one SELECT whose single row has a single boolean column",
                        observed=redact_observed("checks", check),
                        hint="write one assertion per check, e.g. "
                        '"select count(*) > 0 from daily_conversions"; put each further '
                        "assertion in its own string of the checks list",
                    )
                )
    if problems:
        raise_problems(problems, pyproject)


def _resolve_python(
    value: str,
    project_dir: Path,
    app_dir: Path,
    pyproject: Path,
    sources: Mapping[str, str],
    environ: Mapping[str, str],
) -> Interpreter:
    # The rules live in staging.config.interpreter (shared with the draft).
    found = resolve_interpreter(value, project_dir=project_dir, app_dir=app_dir, environ=environ)
    runs = found.path is None or found.path == sys.executable
    broken = None if runs else interpreter_problem(str(found.path))
    if found.path is None or broken is not None:
        origin = _source_for(sources, "python")
        raise_problems(
            [
                Problem(
                    key="tool.staging.python",
                    origin=origin,
                    what="the interpreter for the app's commands "
                    + ("was not found" if broken is None else "does not run"),
                    expected="an executable path or a venv dir (relative to the project), "
                    "or a name on PATH",
                    observed=repr(value) if broken is None else f"{found.path}: {broken}",
                    hint="create the venv (e.g. python -m venv .venv) and set python = "
                    '".venv" (or its bin/python), or leave python = "" to use the app dir\'s '
                    ".venv/ or venv/, else staging's own",
                )
            ],
            pyproject,
        )
    return found
