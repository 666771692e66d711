"""Which staging placeholder each settings field gets, decided from its name and type.

A field maps to a service endpoint ({postgres.*}, {temporal.*}), to a loopback capture
sink ({capture.NAME}) when it is an outbound URL, or to nothing (it keeps its default:
a task queue, a log level). Secret-like fields left without a value are reported, since
the preflight fails on them unless they are optional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from staging.init.settings_scan import SettingsField

_DB_CONTEXT = re.compile(r"(^|_)(db|database|postgres|postgresql|pg|sql|psql)(_|$)")
_DB_URL_NAMES = {"dsn", "url", "uri", "database_url", "db_url", "sqlalchemy_database_uri"}
_TEMPORAL_CONTEXT = re.compile(r"(^|_)temporal(_|$)")
_OUTBOUND = re.compile(r"(webhook|slack|hook|notify|callback|alert|discord|teams)")
_URLISH = re.compile(r"(^|_)(url|uri|endpoint)$")
_OTHER_SERVICES = re.compile(r"(redis|cache|broker|amqp|rabbit|kafka|celery|mongo|elastic|s3)")
_SECRET_WORDS = ("password", "secret", "token", "key", "dsn", "credential")

_DB_PARTS = {
    "host": "host",
    "hostname": "host",
    "server": "host",
    "port": "port",
    "user": "user",
    "username": "user",
    "login": "user",
    "password": "password",
    "pass": "password",
    "pwd": "password",
    "name": "database",
    "db": "database",
    "dbname": "database",
    "database": "database",
}
_TEMPORAL_PARTS = {
    "address": "address",
    "target": "address",
    "host_port": "address",
    "hostport": "address",
    "url": "address",
    "endpoint": "address",
    "server": "address",
    "host": "host",
    "port": "port",
    "namespace": "namespace",
}


@dataclass(frozen=True)
class Mapped:
    field: SettingsField
    placeholder: str | None  # None: not delivered, keeps its default
    why: str


def _leaf(words: str, context: re.Pattern[str]) -> str:
    """`db_password` -> `password`; `temporal_address` -> `address`."""
    return context.sub("_", words).strip("_") or words


def map_field(f: SettingsField) -> Mapped:
    path = "_".join(p.lower() for p in f.path)
    name = f.name.lower()
    if "task_queue" in path or name in ("queue", "taskqueue"):
        return Mapped(f, None, "a task queue keeps its default (the worker polls it)")
    if f.nested_json:
        return Mapped(f, None, "a nested model read as one JSON variable: not filled in")
    if _TEMPORAL_CONTEXT.search(path) or name == "namespace":
        part = _TEMPORAL_PARTS.get(_leaf(name, _TEMPORAL_CONTEXT)) or _TEMPORAL_PARTS.get(name)
        if part == "host" and isinstance(f.default, str) and ":" in f.default:
            part = "address"  # `TEMPORAL_HOST = "localhost:7233"` means host:port
        if part:
            return Mapped(f, f"{{temporal.{part}}}", "Temporal endpoint")
    db = _database(path, name, f.annotation)
    if db:
        return db_mapped(f, db)
    if _OTHER_SERVICES.search(path):
        return Mapped(f, None, "another service staging does not start: keeps its default")
    if _OUTBOUND.search(name) or (_URLISH.search(name) and "temporal" not in path):
        return Mapped(f, f"{{capture.{capture_name(f)}}}", "an outbound URL: a loopback sink")
    return Mapped(f, None, "no staging value: keeps its default")


def db_mapped(f: SettingsField, part: str) -> Mapped:
    return Mapped(f, f"{{postgres.{part}}}", "Postgres" + (" DSN" if part == "url" else ""))


def _database(path: str, name: str, annotation: str) -> str | None:
    if "PostgresDsn" in annotation or name in _DB_URL_NAMES - {"url", "uri"}:
        return "url"
    in_db = bool(_DB_CONTEXT.search(path))
    if not in_db:
        return None
    leaf = _leaf(name, _DB_CONTEXT)
    if leaf in ("url", "uri", "dsn", "") or name in _DB_URL_NAMES:
        return "url"
    return _DB_PARTS.get(leaf)


def capture_name(f: SettingsField) -> str:
    """`slack_webhook_url` -> `slack`; `alerts.webhook_url` -> `alerts`."""
    words = [w for w in "_".join(f.path).lower().split("_") if w]
    if "slack" in words:
        return "slack"
    kept = [w for w in words if w not in ("url", "uri", "endpoint", "webhook", "hook")]
    name = "_".join(kept) or "webhook"
    return re.sub(r"[^a-z0-9_-]", "_", name)


def is_secret_like(f: SettingsField) -> bool:
    name = f.name.lower()
    return "SecretStr" in f.annotation or any(w in name for w in _SECRET_WORDS)


def map_fields(fields: list[SettingsField]) -> list[Mapped]:
    return [map_field(f) for f in fields]
