"""Render `[tool.staging.env]` and `[tool.staging.process_env]` templates: `{postgres.host}`.

A placeholder is `{name}` where name is dotted (`postgres.password`, `capture.slack`);
`{{` and `}}` stand for literal braces. The known names are `postgres.*` and
`temporal.*` (from the service endpoints) and `capture.<NAME>` for any NAME: each
distinct capture name becomes one loopback sink, so a run calls `capture_names` first,
starts the sinks, then renders with `placeholder_values(...)`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from staging.errors import ConfigError
from staging.services.base import PostgresEndpoint, TemporalEndpoint

POSTGRES_KEYS = ("host", "port", "user", "password", "database", "url")
TEMPORAL_KEYS = ("address", "host", "port", "namespace")
CAPTURE_PREFIX = "capture."
STATIC_NAMES = tuple(
    [f"postgres.{k}" for k in POSTGRES_KEYS] + [f"temporal.{k}" for k in TEMPORAL_KEYS]
)
_CAPTURE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SYNTAX_HINT = "placeholders look like {postgres.host}; write {{ and }} for literal braces"


@dataclass(frozen=True)
class _Placeholder:
    name: str


def parse_template(
    template: str, *, var: str, source: str, table: str = "env"
) -> list[str | _Placeholder]:
    """Split a template into literal text and placeholders; raise on unbalanced braces."""
    parts: list[str | _Placeholder] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        pair = template[i : i + 2]
        if pair in ("{{", "}}"):
            literal.append(char)
            i += 2
        elif char == "{":
            end = template.find("}", i + 1)
            name = template[i + 1 : end] if end != -1 else ""
            if end == -1 or "{" in name or not name.strip():
                raise _syntax_error(f"{table}.{var}", source, template, "an unclosed or empty '{'")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_Placeholder(name.strip()))
            i = end + 1
        elif char == "}":
            raise _syntax_error(f"{table}.{var}", source, template, "a '}' without a matching '{'")
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    return parts


def _syntax_error(key: str, source: str, template: str, what: str) -> ConfigError:
    return ConfigError(
        f"tool.staging.{key} in {source}: the template has {what}",
        expected="balanced placeholders like {postgres.host}",
        observed=repr(template),
        hint=_SYNTAX_HINT,
    )


def _placeholders(
    templates: Mapping[str, str], source: str, table: str = "env"
) -> Iterable[tuple[str, str]]:
    for var, template in templates.items():
        for part in parse_template(template, var=var, source=source, table=table):
            if isinstance(part, _Placeholder):
                yield var, part.name


def _capture_name(name: str) -> str | None:
    if not name.startswith(CAPTURE_PREFIX):
        return None
    rest = name[len(CAPTURE_PREFIX) :]
    return rest if _CAPTURE_NAME.fullmatch(rest) else None


def capture_names(
    templates: Mapping[str, str],
    *more: Mapping[str, str],
    source: str = "[tool.staging.env]",
) -> list[str]:
    """The distinct NAMEs of `{capture.NAME}` placeholders, sorted: one sink each.

    `more`: other tables rendered with the same placeholders (`process_env`).
    """
    names = {
        _capture_name(name)
        for table in (templates, *more)
        for _, name in _placeholders(table, source)
    }
    return sorted(n for n in names if n is not None)


def validate_templates(templates: Mapping[str, str], *, source: str, table: str = "env") -> None:
    """Fail early (before any service starts) on syntax errors and unknown placeholders."""
    for var, name in _placeholders(templates, source, table):
        if name not in STATIC_NAMES and _capture_name(name) is None:
            raise _unknown(f"{table}.{var}", name, source, [*STATIC_NAMES, "capture.<NAME>"])


def render_env(
    templates: Mapping[str, str],
    values: Mapping[str, str],
    *,
    source: str,
    table: str = "env",
) -> dict[str, str]:
    """Render every template; the known names are exactly the keys of `values`."""
    rendered: dict[str, str] = {}
    for var, template in templates.items():
        out: list[str] = []
        for part in parse_template(template, var=var, source=source, table=table):
            if isinstance(part, str):
                out.append(part)
            elif part.name in values:
                out.append(values[part.name])
            else:
                raise _unknown(f"{table}.{var}", part.name, source, sorted(values))
        rendered[var] = "".join(out)
    return rendered


def _unknown(key: str, name: str, source: str, known: list[str]) -> ConfigError:
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    suggestion = f"did you mean {{{match[0]}}}? " if match else ""
    return ConfigError(
        f"tool.staging.{key} in {source}: unknown placeholder {{{name}}}",
        expected=f"one of {', '.join('{' + k + '}' for k in known)}",
        observed=f"{{{name}}}",
        hint=f"{suggestion}{_SYNTAX_HINT}",
    )


def placeholder_values(
    postgres: PostgresEndpoint, temporal: TemporalEndpoint, captures: Mapping[str, str]
) -> dict[str, str]:
    """Every placeholder's value for one run; `captures` maps NAME -> the sink's URL."""
    values = {
        "postgres.host": postgres.host,
        "postgres.port": str(postgres.port),
        "postgres.user": postgres.user,
        "postgres.password": postgres.password,
        "postgres.database": postgres.database,
        "postgres.url": postgres.url,
        "temporal.address": temporal.address,
        "temporal.host": temporal.host,
        "temporal.port": str(temporal.port),
        "temporal.namespace": temporal.namespace,
    }
    values.update({f"{CAPTURE_PREFIX}{name}": url for name, url in captures.items()})
    return values
