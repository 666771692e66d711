"""Inspect an app without importing or running it: pyproject, files, and the AST.

The result says what was found and, in `undecided`, what a person has to decide.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from staging.init import pyfiles
from staging.init.mapping import Mapped, is_secret_like, map_fields
from staging.init.settings_scan import SettingsClass, settings_classes
from staging.init.setup_scan import SetupStep, histories, setup_steps
from staging.init.temporal_scan import WorkerSite, WorkflowDef, worker_sites, workflow_defs


@dataclass
class Discovery:
    project_dir: Path
    roots: list[str]
    roots_source: str
    settings: SettingsClass | None
    mapped: list[Mapped]
    workers: list[WorkerSite]
    workflows: list[WorkflowDef]
    setup: list[SetupStep]
    histories: list[str]
    has_venv: str | None
    scripts: dict[str, str] = field(default_factory=dict)  # module -> "module:function"
    found: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)

    @property
    def optional_secrets(self) -> list[str]:
        """Secret-like top-level fields staging gives no value, whose type admits None."""
        return [
            m.field.name
            for m in self.mapped
            if m.placeholder is None
            and len(m.field.path) == 1
            and is_secret_like(m.field)
            and m.field.admits_none
        ]


def read_pyproject(project_dir: Path) -> dict[str, Any]:
    path = project_dir / "pyproject.toml"
    if not path.is_file():
        return {}
    return tomllib.loads(path.read_text(encoding="utf-8"))


def discover(project_dir: Path) -> Discovery:
    project_dir = project_dir.resolve()
    pyproject = read_pyproject(project_dir)
    roots, roots_source = pyfiles.import_roots(project_dir, pyproject)
    files = list(pyfiles.walk(project_dir, roots))
    classes = settings_classes(files)
    chosen = _choose_settings(classes)
    d = Discovery(
        project_dir=project_dir,
        roots=roots,
        roots_source=roots_source,
        settings=chosen,
        mapped=map_fields(chosen.fields) if chosen else [],
        workers=_distinct(worker_sites(files, classes)),
        workflows=workflow_defs(files),
        setup=setup_steps(project_dir, files),
        histories=histories(project_dir),
        has_venv=next((v for v in (".venv", "venv") if (project_dir / v).is_dir()), None),
        scripts=_console_scripts(pyproject),
    )
    _narrate(d, classes)
    return d


def _console_scripts(pyproject: dict[str, Any]) -> dict[str, str]:
    scripts = pyproject.get("project", {}).get("scripts", {})
    out: dict[str, str] = {}
    if isinstance(scripts, dict):
        for target in scripts.values():
            if isinstance(target, str) and ":" in target:
                out.setdefault(target.partition(":")[0].strip(), target.strip())
    return out


def _choose_settings(classes: list[SettingsClass]) -> SettingsClass | None:
    """The class the app instantiates: not nested in another, most fields, "Settings" first."""
    nested = {f.annotation for c in classes for f in c.fields}
    top = [c for c in classes if c.name not in nested and c.target] or classes
    if not top:
        return None
    return max(top, key=lambda c: (c.name == "Settings", len(c.fields)))


def _distinct(sites: list[WorkerSite]) -> list[WorkerSite]:
    seen: set[tuple[str, str | None]] = set()
    out = []
    for s in sites:
        key = (s.file.rel, s.task_queue)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _narrate(d: Discovery, classes: list[SettingsClass]) -> None:
    d.found.append(f"import roots: {', '.join(d.roots)} (from {d.roots_source})")
    if d.has_venv:
        d.found.append(f'the app\'s own venv: {d.has_venv}/ (python = "" picks it up)')
    _narrate_settings(d, classes)
    for w in d.workers:
        queue = repr(w.task_queue) if w.task_queue else "?"
        d.found.append(f"a Worker in {w.file.rel}, task queue {queue} ({w.queue_source})")
        if not w.task_queue:
            d.undecided.append(f"the task queue of the worker in {w.file.rel}: {w.queue_source}")
        if not w.runnable and w.file.module not in d.scripts:
            d.undecided.append(f"how to start {w.file.rel}: it has no `__main__` block")
    if not d.workers:
        d.undecided.append("the worker: no `temporalio.worker.Worker(...)` call found")
    for s in d.setup:
        d.found.append(f"setup step {s.name!r}: {s.why}")
    for wf in d.workflows:
        if wf.args() is None:
            names = ", ".join(f"{p.name}: {p.annotation or '?'}" for p in wf.params)
            d.undecided.append(f"arguments of workflow {wf.type_name} ({names})")
        else:
            d.found.append(f"workflow {wf.type_name} in {wf.file.rel}")
    for h in d.histories:
        d.found.append(f"replay histories: {h}")


def _narrate_settings(d: Discovery, classes: list[SettingsClass]) -> None:
    s = d.settings
    if s is None:
        d.undecided.append("the settings class: no pydantic-settings BaseSettings subclass found")
        return
    others = [c.name for c in classes if c is not s]
    extra = f" (also seen: {', '.join(others)})" if others else ""
    d.found.append(f"settings class {s.target or s.file.rel + ':' + s.name}{extra}")
    if not s.target:
        d.undecided.append(f"the module of {s.file.rel}: it is outside the import roots")
    for key in ("env_prefix", "env_nested_delimiter", "env_file", "secrets_dir"):
        if key in s.config:
            d.found.append(f"  {key} = {s.config[key]!r}")
    for m in d.mapped:
        if m.placeholder:
            d.found.append(f"  {m.field.env} = {m.placeholder}  ({m.field.dotted}: {m.why})")
        elif is_secret_like(m.field) and m.field.name not in d.optional_secrets:
            d.undecided.append(
                f"a value for secret-like field {m.field.dotted} ({m.field.env}): "
                "staging has none to give"
            )
