"""Config errors that name the key, where its value came from, and the fix.

Turns pydantic's `ValidationError` into one `ConfigError` (one problem, or a list of
them), with "did you mean" suggestions for misspelt keys and secret-safe echoes of the
offending values.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from staging.config.model import StagingConfig
from staging.config.table import WORKER_EXAMPLE
from staging.errors import ConfigError
from staging.redact import is_secret_name


def redact_observed(key: str, value: Any) -> str:
    """A short, secret-safe rendering of a config value for an error message."""
    if any(is_secret_name(part) for part in key.split(".")):
        return "<redacted>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Problem:
    key: str  # "tool.staging.pipelines[0].timeout"
    origin: str  # "file" | "env:STAGING_X" | "cli" | "default"
    what: str
    expected: str | None
    observed: str | None
    hint: str


def nearest(word: str, candidates: list[str], *, quote: bool = True) -> str:
    """'did you mean X? ' when a candidate is close to `word`, else ''."""
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not match:
        return ""
    return f"did you mean {match[0]!r}? " if quote else f"did you mean {match[0]}? "


def raise_problems(
    problems: list[Problem], pyproject: Path, cause: BaseException | None = None
) -> NoReturn:
    def where(p: Problem) -> str:
        return p.key if p.origin == "file" else f"{p.key} (from {p.origin})"

    if len(problems) == 1:
        (p,) = problems
        raise ConfigError(
            f"{where(p)} in {pyproject}: {p.what}",
            expected=p.expected,
            observed=p.observed,
            hint=p.hint,
        ) from cause
    lines = [f"{len(problems)} problems in [tool.staging] of {pyproject}:"]
    for p in problems:
        lines.append(f"  - {where(p)}: {p.what}")
        if p.expected is not None or p.observed is not None:
            lines.append(f"      expected {p.expected}; observed {p.observed}")
        lines.append(f"      fix: {p.hint}".replace("\n", "\n           "))
    raise ConfigError(
        "\n".join(lines),
        hint=f"fix each key listed above in {pyproject}, starting with {problems[0].key}",
    ) from cause


def problems_from_validation(
    exc: ValidationError, source_of: Callable[[str], str]
) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc if not isinstance(p, int))
        problems.append(_problem(err, loc, _format_loc(loc), source_of(dotted)))
    return problems


def _format_loc(loc: tuple[Any, ...]) -> str:
    key = "tool.staging"
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key


def _problem(err: Any, loc: tuple[Any, ...], key: str, origin: str) -> Problem:
    kind, msg = err["type"], str(err["msg"]).removeprefix("Value error, ")
    last = str(loc[-1]) if loc else "tool.staging"
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        return Problem(
            key,
            origin,
            f"unknown key {last!r}",
            expected=f"one of {', '.join(known)}" if known else "no such key",
            observed=repr(last),
            hint=nearest(last, known) + "remove the key or fix its spelling",
        )
    if kind == "missing":
        if loc == ("worker",):
            return Problem(
                key,
                origin,
                "the worker table is missing",
                expected="a [tool.staging.worker] table with command and task_queue",
                observed="no [tool.staging.worker]",
                hint=f"add:\n{WORKER_EXAMPLE}",
            )
        example = WORKER_EXAMPLE if loc[0] == "worker" else f"{last} = ..."
        return Problem(
            key,
            origin,
            f"required key {last!r} is missing",
            expected=f"{last} to be set",
            observed="not set",
            hint=f"add {last!r} to its table, e.g.\n{example}",
        )
    observed = redact_observed(key, err.get("input"))
    if kind == "value_error" and "exactly one of 'command' or 'workflow'" in msg:
        given = err.get("input") if isinstance(err.get("input"), dict) else {}
        present = [k for k in ("command", "workflow") if k in given] or ["neither"]
        return Problem(
            key,
            origin,
            msg,
            expected="exactly one of command or workflow",
            observed=" and ".join(present),
            hint='give the pipeline either command = ["python", "..."] or '
            'workflow = "WorkflowType" with args = [...], not both',
        )
    expected = str(err.get("ctx", {}).get("expected") or _expected_from(msg))
    return Problem(
        key,
        origin,
        msg,
        expected=expected,
        observed=f"{observed} ({type(err.get('input')).__name__})",
        hint=f"{key} must be {expected}"
        + (" (TOML strings need quotes)" if kind.startswith("string") else ""),
    )


def _expected_from(msg: str) -> str:
    match = re.match(r"Input should be (.*?)(,|$)", msg)
    return match.group(1) if match else msg


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = StagingConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        info = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        model = _model_in(info.annotation) if info is not None else None
    if model is None:
        return []
    return sorted(f.alias or n for n, f in model.model_fields.items())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
