"""Hints over the whole corpus name only the app's own fields and variables (issue 12).

Every corpus case is materialized, its `[tool.staging.env]` rendered for fake endpoints and
delivered the way its config says, and its real settings class judged by the real probe
and `analyse`: no services. For the cases decided in the settings preflight, the verdict's
class and deciding line must be the case's own (the same check the integration corpus run
makes, at a fraction of the cost); for every diagnosis, the hint must name nothing the app
lacks. `tests/integration/test_run_corpus.py` applies the same name check to the hints of
the full runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from staging.config.load import load_config
from staging.config.render import capture_names, placeholder_values, render_env
from staging.preflight import analyse, run_probe
from staging.redact import Redactor
from staging.result import Diagnosis
from staging.services.base import PostgresEndpoint, TemporalEndpoint
from staging.workspace.delivery import render_dotenv, strategy_for
from tests.corpus import CASES, load_case, materialize
from tests.hint_names import AppNames, hint_identifiers, unknown_names

pytestmark = pytest.mark.timeout(300)

PASSWORD = "p@ss:w/rd%#'\" x"
POSTGRES = PostgresEndpoint("127.0.0.1", 55432, "everflow", PASSWORD, "everflow")
TEMPORAL = TemporalEndpoint("127.0.0.1", 57233, "default")
HOSTS = ("127.0.0.1", "localhost", "::1")


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hint-names-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _settings_key(app: Path) -> str:
    """Cases whose settings module and config are the same get the same preflight."""
    digest = hashlib.sha256()
    for rel in ("everflow/settings.py", "pyproject.toml"):
        path = app / rel
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()


def preflight(app: Path) -> Diagnosis | None:
    """The settings preflight of a materialized case, offline."""
    loaded = load_config(app, environ={})
    settings = loaded.config.settings
    env = loaded.config.env
    captures = {name: f"http://127.0.0.1:9/capture/{name}" for name in capture_names(env)}
    rendered = render_env(env, placeholder_values(POSTGRES, TEMPORAL, captures), source="test")
    strategy = strategy_for(settings.delivery, settings.path)
    process_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(app)}
    if strategy.mode == "environ":
        process_env |= rendered
    else:
        (app / settings.path).write_text(render_dotenv(rendered))
    report = run_probe(sys.executable, app, process_env, settings.class_, settings.required)
    return analyse(
        report,
        settings_class=settings.class_,
        required=settings.required,
        delivered=rendered,
        channel=strategy,
        staging_hosts=HOSTS,
        redactor=Redactor([PASSWORD]),
        optional=settings.optional,
    )


@pytest.fixture(scope="module")
def verdicts(scratch: Path) -> dict[str, tuple[Path, Diagnosis | None]]:
    """Every case's preflight verdict; one probe run per distinct settings module."""
    seen: dict[str, Diagnosis | None] = {}
    out: dict[str, tuple[Path, Diagnosis | None]] = {}
    for name in CASES:
        app = materialize(name, scratch / name, git=False)
        key = _settings_key(app)
        if key not in seen:
            seen[key] = preflight(app)
        out[name] = (app, seen[key])
    return out


@pytest.mark.parametrize("name", CASES)
def test_preflight_verdict_of_each_case(
    name: str, verdicts: dict[str, tuple[Path, Diagnosis | None]]
) -> None:
    case = load_case(name)
    _app, diagnosis = verdicts[name]
    if not case.failure_class.startswith("settings."):
        # Decided later in the run (or a pass): the settings must be fit to run.
        assert diagnosis is None, diagnosis
        return
    assert diagnosis is not None
    assert case.accepts(diagnosis.failure_class.value), diagnosis
    text = diagnosis.cause + "\n" + "\n".join(diagnosis.evidence)
    assert not case.evidence_missing(text), diagnosis
    assert PASSWORD not in text + diagnosis.hint


@pytest.mark.parametrize("name", CASES)
def test_hints_name_only_the_apps_own_names(
    name: str, verdicts: dict[str, tuple[Path, Diagnosis | None]]
) -> None:
    app, diagnosis = verdicts[name]
    if diagnosis is None:
        return
    assert not unknown_names(diagnosis.hint, AppNames.of(app)), diagnosis.hint


def test_the_name_check_catches_a_foreign_variable(
    verdicts: dict[str, tuple[Path, Diagnosis | None]],
) -> None:
    """The issue's own example: DB_PASSWORD named for an app that reads DATABASE_URL."""
    dsn_app = AppNames.of(verdicts["dsn-env-file-removed"][0])
    hint = "check how the settings class reads DB_PASSWORD and how the DSN is built"
    assert unknown_names(hint, dsn_app) == ["DB_PASSWORD"]
    assert (
        unknown_names("check how Settings reads DATABASE_URL (field database_url)", dsn_app) == []
    )
    # The names a field reads by prefix, nested delimiter or alias are the app's own.
    assert (
        unknown_names(
            "rename it EVERFLOW_DB_PASSWORD", AppNames.of(verdicts["env-prefix-mismatch"][0])
        )
        == []
    )
    nested = AppNames.of(verdicts["nested-delimiter-mismatch"][0])
    assert unknown_names("rename DB_PASSWORD to DB__PASSWORD", nested) == []
    assert unknown_names("deliver DB__PASSWORT", nested) == ["DB__PASSWORT"]
    alias = AppNames.of(verdicts["alias-renamed"][0])
    assert unknown_names("rename DB_PASSWORD to PGPASSWORD", alias) == []
    assert unknown_names("set OPENAI_API_KEY", alias) == ["OPENAI_API_KEY"]


def test_hint_identifiers_skip_prose_and_paths() -> None:
    hint = 'restore env_file=".env" in Settings.model_config; see /tmp/x_y/logs/setup-migrate.log'
    assert hint_identifiers(hint) == ["env_file", "model_config"]
    assert hint_identifiers("a {capture.NAME} sink, not a URL") == ["NAME", "URL"]
