"""Render `[tool.staging.env]` and `[tool.staging.process_env]` templates: `{postgres.host}`.

A placeholder is `{name}` where name is dotted (`postgres.password`, `capture.slack`);
`{{` and `}}` stand for literal braces. The known names are `postgres.*` and
`temporal.*` (from the service endpoints; their keys belong to the service kinds,
`staging.services.kinds`), `<SERVICE>.host` / `<SERVICE>.port` for each
`[[tool.staging.services]]` entry (whose names the config model checks), and
`capture.<NAME>` for any NAME: each
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
from staging.services.generic_spec import PLACEHOLDER_KEYS, RESERVED_NAMES, GenericEndpoint
from staging.services.kinds import generic as generic_kind
from staging.services.kinds import postgres as postgres_kind
from staging.services.kinds import temporal as temporal_kind

POSTGRES_KEYS = postgres_kind.KEYS
TEMPORAL_KEYS = temporal_kind.KEYS
CAPTURE_PREFIX = "capture."
# The run's task queues, as settings: `backend = "attach"` suffixes them with the run id,
# so an app reads its queue from a setting rather than a constant (`task_queue.<QUEUE>`
# names a configured queue).
WORKER_QUEUE = "worker.task_queue"
QUEUE_PREFIX = "task_queue."
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
        if name in (*STATIC_NAMES, WORKER_QUEUE) or name.startswith(QUEUE_PREFIX):
            continue  # an unknown `task_queue.X` is named when rendering, with the queues
        if _generic_name(name):
            continue  # `{redis.port}`: the config model checks the service exists
        if _capture_name(name) is None:
            known = [*STATIC_NAMES, WORKER_QUEUE, f"{QUEUE_PREFIX}<QUEUE>", "capture.<NAME>"]
            known += [f"<SERVICE>.{k}" for k in PLACEHOLDER_KEYS]
            raise _unknown(f"{table}.{var}", name, source, known)


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


def queue_values(worker_queue: str, queues: Mapping[str, str]) -> dict[str, str]:
    """`{worker.task_queue}` and `{task_queue.<QUEUE>}`: `queues` maps each configured queue
    to the name the run uses (`StagingConfig.task_queues()`)."""
    values = {WORKER_QUEUE: worker_queue}
    values.update({f"{QUEUE_PREFIX}{name}": run_name for name, run_name in queues.items()})
    return values


def _generic_name(name: str) -> bool:
    """`<SERVICE>.host` / `<SERVICE>.port` of a generic service (any name not reserved)."""
    root, _, key = name.partition(".")
    return root not in RESERVED_NAMES and key in PLACEHOLDER_KEYS and bool(root)


def placeholder_values(
    postgres: PostgresEndpoint,
    temporal: TemporalEndpoint,
    captures: Mapping[str, str],
    queues: Mapping[str, str] | None = None,
    *,
    services: Mapping[str, GenericEndpoint] | None = None,
) -> dict[str, str]:
    """Every placeholder's value for one run; `captures` maps NAME -> the sink's URL,
    `queues` holds `queue_values(...)`, `services` the generic services' endpoints by name
    (`Environment.generic`)."""
    values = postgres_kind.KIND.placeholders("postgres", postgres)
    values.update(temporal_kind.KIND.placeholders("temporal", temporal))
    for name, endpoint in (services or {}).items():
        values.update(generic_kind.KIND.placeholders(name, endpoint))
    return run_values(values, captures, queues)


def run_values(
    services: Mapping[str, str],
    captures: Mapping[str, str],
    queues: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every placeholder's value for one run, from the services' own values (a running
    `Environment.placeholders()`: each service rendered by its kind), the capture sinks'
    URLs and `queue_values(...)`."""
    values = dict(services)
    values.update({f"{CAPTURE_PREFIX}{name}": url for name, url in captures.items()})
    values.update(queues or {})
    return values
