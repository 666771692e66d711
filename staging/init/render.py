"""A commented `[tool.staging]` section from a `Discovery`, as TOML text.

Keys that the installed config model does not know (a newer key on an older staging) are
written as comments, so the output always loads with this version's `staging.config`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from staging import __version__
from staging.config.model import SettingsConfig, StagingConfig
from staging.init.discover import Discovery
from staging.init.mapping import is_secret_like
from staging.init.setup_scan import SQL_DSN_VAR
from staging.init.temporal_scan import WorkerSite, WorkflowDef

TODO_QUEUE = "TODO-task-queue"


def has_key(model: Any, key: str) -> bool:
    fields = model.model_fields
    return key in fields or any(f.alias == key for f in fields.values())


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML rendering for {type(value).__name__}")


def _line(key: str, value: Any, comment: str = "") -> str:
    text = f"{key} = {toml_value(value)}"
    return f"{text:<40} # {comment}" if comment else text


def render(d: Discovery) -> str:
    out: list[str] = [
        "",
        "# " + "-" * 75,
        f"# staging: written by `staging init` (staging {__version__}) from the app's code,",
        "# without running it. Review, then `staging run`; decisions it left are marked TODO.",
        "# " + "-" * 75,
        "[tool.staging]",
        'app_dir = "."',
        _line("python", "", _python_comment(d)),
        f"# import roots: {', '.join(d.roots)} ({d.roots_source})",
    ]
    out += _settings(d)
    out += _env(d)
    out += _setup(d)
    out += _workers(d)
    out += _pipelines(d)
    if d.histories:
        out += ["", "[tool.staging.replay]", _line("histories", d.histories)]
    return "\n".join(out) + "\n"


def _python_comment(d: Discovery) -> str:
    if d.has_venv:
        return f'"" = the app\'s {d.has_venv}/'
    return '"" = .venv/ or venv/ in the app dir, else staging\'s own'


def _settings(d: Discovery) -> list[str]:
    s = d.settings
    out = ["", "[tool.staging.settings]"]
    if s is None or not s.target:
        return [*out, _line("class", "", "TODO 'module:Class' of the app's BaseSettings")]
    out.append(_line("class", s.target))
    if s.env_file:
        out += [
            _line("delivery", "dotenv", f"env_file={s.env_file!r} in its model_config"),
            _line("path", s.env_file),
        ]
    elif isinstance(s.config.get("secrets_dir"), str):
        out += [
            _line("delivery", "secrets_dir", "secrets_dir in its model_config"),
            _line("path", s.config["secrets_dir"]),
        ]
    else:
        out.append(_line("delivery", "environ", "no env_file: read from the environment"))
    optional = d.optional_secrets
    if optional:
        line = _line("optional", optional, "secret-like, may be None; staging has no value")
        out.append(line if has_key(SettingsConfig, "optional") else "# " + line)
    return out


def _env(d: Discovery) -> list[str]:
    out = ["", "[tool.staging.env]"]
    kept = []
    for m in d.mapped:
        if m.placeholder:
            out.append(_line(m.field.env, m.placeholder, m.field.dotted))
        else:
            kept.append(m)
    for m in kept:
        todo = "TODO " if is_secret_like(m.field) and m.field.name not in d.optional_secrets else ""
        out.append(f"# {m.field.env}: {todo}{m.why}")
    if any(step.needs_dsn for step in d.setup):
        table = "[tool.staging.process_env]"
        line = _line(SQL_DSN_VAR, "{postgres.url}", "read by the schema step only")
        if has_key(StagingConfig, "process_env"):
            out += ["", table, line]
        else:
            out += ["", "# " + table, "# " + line]
    return out


def _setup(d: Discovery) -> list[str]:
    out: list[str] = []
    usable = not any(s.needs_dsn for s in d.setup) or has_key(StagingConfig, "process_env")
    for step in d.setup:
        lines = [
            "[[tool.staging.setup]]",
            _line("name", step.name, step.why.splitlines()[0][:60]),
            _line("command", step.command),
        ]
        out += ["", *(lines if usable else ["# " + x for x in lines])]
    return out


def worker_command(site: WorkerSite, d: Discovery) -> list[str]:
    module = site.file.module
    if not site.runnable and module in d.scripts:
        target = d.scripts[module]
        func = target.partition(":")[2]
        return ["python", "-c", f"import sys; from {module} import {func}; sys.exit({func}())"]
    command = (
        ["python", "-m", module] if site.file.in_package and module else ["python", site.file.rel]
    )
    return command + ([site.main_arg] if site.main_arg else [])


def _workers(d: Discovery) -> list[str]:
    if not d.workers:
        return [
            "",
            "[tool.staging.worker]",
            _line("command", ["python", "-m", "TODO.worker"], "TODO: no Worker(...) found"),
            _line("task_queue", TODO_QUEUE),
        ]
    several = len(d.workers) > 1 and has_key(StagingConfig, "workers")
    out: list[str] = []
    for i, site in enumerate(d.workers):
        lines = _worker_lines(site, d, named=several)
        header = "[[tool.staging.workers]]" if several else "[tool.staging.worker]"
        if i and not several:  # this staging runs one worker: the others as comments
            lines = ["# " + x for x in [header, *lines]]
            out += ["", "# TODO: another worker (this staging version runs one)", *lines]
        else:
            out += ["", header, *lines]
    return out


def _worker_lines(site: WorkerSite, d: Discovery, *, named: bool) -> list[str]:
    lines = []
    if named:
        lines.append(_line("name", _name(site.task_queue or site.file.path.stem)))
    lines.append(_line("command", worker_command(site, d), site.file.rel))
    queue = site.task_queue or TODO_QUEUE
    lines.append(_line("task_queue", queue, site.queue_source if site.task_queue else "TODO"))
    return lines


def _name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", re.sub(r"(?<!^)(?=[A-Z])", "-", text).lower()).strip("-")


def _queue_of(wf: WorkflowDef, d: Discovery) -> str | None:
    if len(d.workers) < 2:
        return None
    for site in d.workers:
        if wf.class_name in site.workflows:
            return site.task_queue
    return None


def _pipelines(d: Discovery) -> list[str]:
    out: list[str] = []
    names: set[str] = set()
    for wf in d.workflows:
        name = _name(wf.type_name) or "pipeline"
        while name in names:
            name += "-2"
        names.add(name)
        args = wf.args()
        lines = [
            "[[tool.staging.pipelines]]",
            _line("name", name),
            _line("workflow", wf.type_name, f"{wf.file.rel}:{wf.class_name}"),
            _line("args", args if args is not None else [], _args_comment(wf, args)),
        ]
        queue = _queue_of(wf, d)
        if queue:
            lines.append(_line("task_queue", queue))
        lines.append(_line("timeout", 120))
        if queue and queue != d.workers[0].task_queue and not has_key(StagingConfig, "workers"):
            lines = [
                "# TODO: its worker is not run by this staging version",
                *("# " + x for x in lines),
            ]
        elif args is None:
            todo = ", ".join(f"{p.name}: {p.annotation or '?'}" for p in wf.params)
            lines = [f"# TODO: arguments for {wf.type_name}({todo})", *("# " + x for x in lines)]
        out += ["", *lines]
    return out


def _args_comment(wf: WorkflowDef, args: list[Any] | None) -> str:
    if args is None or not wf.params:
        return ""
    guessed = [p.name for p in wf.params[: len(args)]]
    return f"guessed: {', '.join(guessed)}" if guessed else "its defaults"
