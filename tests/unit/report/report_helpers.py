"""Synthetic verdicts shaped like staging.verdict.build_verdict's: the env-file-removed pair."""

from __future__ import annotations

from typing import Any

MODEL_CONFIG = {
    "env_file": ".env",
    "env_prefix": "",
    "env_nested_delimiter": None,
    "secrets_dir": None,
    "case_sensitive": False,
    "env_file_encoding": "utf-8",
    "extra": "ignore",
}
FIELDS = ("db_host", "db_port", "db_user", "db_password", "db_name", "slack_webhook_url")
SECRETS = {"db_password", "slack_webhook_url"}


def provenance(source: str) -> list[dict[str, str]]:
    return [
        {
            "field": name,
            "source": source,
            "value": "***" if name in SECRETS and source != "default" else "(empty)",
            "secret": "yes" if name in SECRETS else "no",
            "detail": ".env: " + name.upper() if source == "dotenv" else "",
        }
        for name in FIELDS
    ]


def phase(
    name: str, status: str, started: float, duration: float, diagnosis: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "duration": duration,
        "started_at": started,
        "details": {"summary": f"{name} summary"},
        "diagnosis": diagnosis,
    }


def green_verdict(tree: str = "a" * 40, run_id: str = "20250101-000000-aaaaaa") -> dict[str, Any]:
    names = (
        "config",
        "services",
        "workspace",
        "preflight",
        "replay",
        "setup",
        "worker",
        "pipelines",
        "checks",
    )
    return {
        "schema": 1,
        "run_id": run_id,
        "status": "passed",
        "exit_code": 0,
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T00:00:30+00:00",
        "duration": 30.0,
        "backend": "process",
        "tree": {"hash": tree, "commit": "c" * 40, "dirty": False},
        # What the run covered: the gate opens only for a complete one.
        "coverage": {
            "configured": ["everflow"],
            "ran": ["everflow"],
            "replay": "passed",
            "checks": "passed",
            "complete": True,
        },
        "phases": [phase(n, "passed", float(i), 1.0) for i, n in enumerate(names)],
        "pipelines": [
            {
                "name": "everflow",
                "status": "passed",
                "duration": 2.5,
                "exit_code": 0,
                "notifications": 0,
                "workflows": [],
                "checks": [
                    {
                        "check": "select count(*) > 0 from daily_conversions",
                        "value": "True",
                        "ok": True,
                    }
                ],
            }
        ],
        "settings": {
            "class": "everflow.settings:Settings",
            "delivery": "dotenv",
            "model_config": dict(MODEL_CONFIG),
            "provenance": provenance("dotenv"),
        },
        "notifications": [],
        "diagnosis": None,
        "notes": [],
    }


def red_env_file_removed(
    tree: str = "b" * 40, run_id: str = "20250102-000000-bbbbbb"
) -> dict[str, Any]:
    diagnosis = {
        "class": "settings.secret_missing",
        "cause": "db_password resolved from its default although staging delivered DB_PASSWORD "
        "in .env: Settings.model_config has no env_file, so .env is never read",
        "evidence": ["db_password: default (empty)", "model_config: env_file=None"],
        "hint": 'restore env_file=".env" in Settings.model_config',
    }
    verdict = green_verdict(tree, run_id)
    verdict.update(
        status="failed",
        exit_code=1,
        diagnosis=diagnosis,
        pipelines=[],
        phases=[
            phase("config", "passed", 0.0, 0.05),
            phase("services", "passed", 0.05, 2.0),
            phase("workspace", "passed", 2.05, 0.2),
            phase("preflight", "failed", 2.25, 0.8, diagnosis),
        ],
        settings={
            "class": "everflow.settings:Settings",
            "delivery": "dotenv",
            "model_config": {**MODEL_CONFIG, "env_file": None},
            "provenance": provenance("default"),
        },
    )
    return verdict
