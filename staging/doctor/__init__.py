"""`staging doctor`: before a run, say what would stop it — one line per check, a hint each.

Nothing here starts a service. The settings class and the replay gate run for real, in a
throwaway workspace copy whose settings are rendered from placeholder endpoints (a
generated password with the same hostile characters as a run's, loopback addresses that
nothing listens on), so the same secret-missing and egress rules as a run apply without
touching the developer's tree or anything beyond loopback.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from staging.config.load import LoadedConfig, load_config
from staging.config.render import capture_names, placeholder_values, queue_values, render_env
from staging.doctor.report import Check, DoctorReport, failed
from staging.doctor.services import check_services
from staging.errors import StagingError
from staging.phases.workspace import app_process_env
from staging.preflight import analyse, describe_channel, provenance_table, run_probe
from staging.redact import Redactor, is_secret_name
from staging.replay import diagnose, find_histories, history_rows, run_replay_probe
from staging.services.base import PostgresEndpoint, TemporalEndpoint
from staging.services.generic_spec import GenericEndpoint
from staging.services.password import generate_password
from staging.services.ports import free_port
from staging.shared_venv import shared_venv
from staging.workspace import Delivery, Workspace, deliver, hermetic_env

_LOOPBACK = "127.0.0.1"
_VERSIONS = (
    "import importlib.metadata as m, json, sys\n"
    "out = {'python': sys.version.split()[0]}\n"
    "for mod, dist in (('pydantic_settings', 'pydantic-settings'), ('temporalio', 'temporalio')):\n"
    "    try:\n"
    "        __import__(mod)\n"
    "        out[dist] = m.version(dist)\n"
    "    except Exception as exc:\n"
    "        out[dist] = None\n"
    "        out[dist + ':error'] = f'{type(exc).__name__}: {exc}'\n"
    "print(json.dumps(out))\n"
)


@dataclass
class OfflineApp:
    """A workspace copy with settings delivered from placeholder endpoints."""

    workspace: Workspace
    rendered: dict[str, str]
    delivery: Delivery
    env: dict[str, str]
    hosts: set[str]


@contextmanager
def offline_app(loaded: LoadedConfig, redactor: Redactor) -> Iterator[OfflineApp]:
    """Yield the app as a run would see it, minus the services; always removes the copy."""
    cfg = loaded.config
    password = generate_password()
    redactor.add(password)
    postgres = PostgresEndpoint(
        _LOOPBACK, free_port(), cfg.postgres.user, password, cfg.postgres.database
    )
    temporal = TemporalEndpoint(_LOOPBACK, free_port(), cfg.temporal.namespace)
    sink = free_port()
    names = capture_names(cfg.env, cfg.process_env)
    captures = {name: f"http://{_LOOPBACK}:{sink}/{name}" for name in names}
    queues = queue_values(cfg.worker.task_queue, cfg.task_queues())
    generic = {s.name: GenericEndpoint(s.name, _LOOPBACK, free_port()) for s in cfg.services}
    values = placeholder_values(postgres, temporal, captures, queues, services=generic)
    rendered = render_env(cfg.env, values, source=str(loaded.pyproject))
    process = render_env(cfg.process_env, values, source=str(loaded.pyproject), table="process_env")
    for name, value in {**rendered, **process}.items():
        if is_secret_name(name):
            redactor.add(value, fragments=False)  # as the run does (phases/workspace.py)
    workspace = Workspace.create(loaded.app_dir, settings_path=cfg.settings.path)
    try:
        delivery = deliver(workspace, rendered, mode=cfg.settings.delivery, path=cfg.settings.path)
        variables = {**delivery.env_vars, **process}
        env = app_process_env(loaded, workspace, variables, workspace.root / "origins")
        yield OfflineApp(workspace, rendered, delivery, env, {_LOOPBACK, "localhost", "::1"})
    finally:
        workspace.remove()


def run_doctor(project: Path, *, backend: str | None = None) -> DoctorReport:
    redactor = Redactor()
    report = DoctorReport(project=str(project))
    loaded = _config(project, backend, report)
    requested = loaded.config.backend if loaded is not None else backend or "auto"
    report.backend = check_services(loaded, requested, report)
    if loaded is not None:
        _interpreter(loaded, report)
        _app_checks(loaded, redactor, report)
    report.checks = [
        Check(c.name, c.status, redactor.text(c.detail), redactor.text(c.hint))
        for c in report.checks
    ]
    report.provenance = [{k: redactor.text(v) for k, v in r.items()} for r in report.provenance]
    return report


def _config(project: Path, backend: str | None, report: DoctorReport) -> LoadedConfig | None:
    try:
        loaded = load_config(project, cli={"backend": backend})
    except StagingError as exc:
        report.checks.append(failed("config", exc))
        return None
    cfg = loaded.config
    report.project = str(loaded.pyproject)
    report.checks.append(
        Check(
            "config",
            "ok",
            f"[tool.staging] in {loaded.pyproject} is valid: worker "
            f"`{' '.join(cfg.worker.command)}`, {len(cfg.pipelines)} pipeline(s)",
        )
    )
    return loaded


def _interpreter(loaded: LoadedConfig, report: DoctorReport) -> None:
    env = hermetic_env(loaded.python)
    try:
        out = subprocess.run(
            [loaded.python, "-c", _VERSIONS],
            cwd=loaded.app_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        versions: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        report.checks.append(
            Check(
                "interpreter",
                "fail",
                f"{loaded.python} does not run: {exc}",
                "check [tool.staging] python",
            )
        )
        return
    broken = [d for d in ("pydantic-settings", "temporalio") if versions.get(d) is None]
    shown = " · ".join(f"{k} {v}" for k, v in versions.items() if ":" not in k and v)
    if broken:
        errors = "; ".join(str(versions.get(f"{d}:error")) for d in broken)
        report.checks.append(
            Check(
                "interpreter",
                "fail",
                f"{loaded.python} ({shown}) cannot import {', '.join(broken)}: {errors}",
                f"install the app's requirements into {loaded.python}",
            )
        )
    else:
        found = f", found as {loaded.python_found}" if loaded.python_found else ""
        report.checks.append(Check("interpreter", "ok", f"{loaded.python} ({shown}{found})"))
    shared = shared_venv(loaded.python)
    if shared is not None:
        report.checks.append(Check("app environment", "warn", shared.describe(), shared.hint))


def _app_checks(loaded: LoadedConfig, redactor: Redactor, report: DoctorReport) -> None:
    try:
        with offline_app(loaded, redactor) as app:
            _settings(loaded, app, redactor, report)
            _replay(loaded, app, redactor, report)
    except StagingError as exc:
        report.checks.append(failed("workspace", exc))


def _settings(
    loaded: LoadedConfig, app: OfflineApp, redactor: Redactor, report: DoctorReport
) -> None:
    settings = loaded.config.settings
    if not settings.class_:
        report.checks.append(
            Check("settings", "skip", "no [tool.staging.settings] class: no settings preflight")
        )
        return
    probe = run_probe(
        loaded.python,
        app.workspace.app,
        app.env,
        settings.class_,
        settings.required,
        timeout=60,
        redactor=redactor,
    )
    report.provenance = provenance_table(probe)
    diagnosis = analyse(
        probe,
        settings_class=settings.class_,
        required=settings.required,
        delivered=app.rendered,
        channel=app.delivery.strategy or describe_channel(settings.delivery, settings.path),
        staging_hosts=app.hosts,
        redactor=redactor,
        optional=settings.optional,
        config_file=str(loaded.pyproject),
    )
    if diagnosis is not None:
        detail = f"{diagnosis.failure_class.value}: {diagnosis.cause}"
        report.checks.append(Check("settings", "fail", detail, diagnosis.hint))
        return
    sources: dict[str, int] = {}
    for row in report.provenance:
        sources[row["source"]] = sources.get(row["source"], 0) + 1
    summary = ", ".join(f"{n} from {s}" for s, n in sorted(sources.items()))
    report.checks.append(
        Check("settings", "ok", f"{settings.class_} loads via {app.delivery.channel}: {summary}")
    )


def _replay(
    loaded: LoadedConfig, app: OfflineApp, redactor: Redactor, report: DoctorReport
) -> None:
    cfg = loaded.config
    if not cfg.replay.histories:
        report.checks.append(
            Check(
                "replay",
                "skip",
                "no [tool.staging.replay] histories: the replay gate is off",
                "record some: staging run --record tests/histories",
            )
        )
        return
    try:
        files = find_histories(loaded.app_dir, cfg.replay.histories, pyproject=loaded.pyproject)
    except StagingError as exc:
        report.checks.append(failed("replay", exc))
        return
    result = run_replay_probe(
        loaded.python,
        app.workspace.app,
        app.env,
        files,
        workflows=cfg.replay.workflows,
        worker_command=cfg.worker.command,
        timeout=120,
        redactor=redactor,
    )
    report.histories = history_rows(result, app_dir=loaded.app_dir)
    diagnosis = diagnose(result, app_dir=loaded.app_dir)
    if diagnosis is not None:
        detail = f"{diagnosis.failure_class.value}: {diagnosis.cause}"
        report.checks.append(Check("replay", "fail", detail, diagnosis.hint))
        return
    count = f"{len(files)} history" if len(files) == 1 else f"{len(files)} histories"
    report.checks.append(
        Check("replay", "ok", f"{count} found, all replay ({', '.join(result.workflows)})")
    )


__all__ = ["Check", "DoctorReport", "offline_app", "run_doctor"]
