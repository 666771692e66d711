"""Synthetic verdicts shaped like staging.verdict.build_verdict's."""

from __future__ import annotations

from typing import Any

from staging.gate.coverage import Coverage


def make_verdict(
    tree: Any,
    status: str = "passed",
    *,
    run_id: str = "20250101-000000-aaaaaa",
    diagnosis: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    provenance: list[dict[str, Any]] | None = None,
    configured: tuple[str, ...] = ("everflow",),
    ran: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """A verdict shaped like staging.verdict.build_verdict's."""
    if status != "passed" and diagnosis is None:
        diagnosis = {
            "class": "settings.secret_missing",
            "cause": "db_password resolved from its default",
            "evidence": ["db_password: default (empty)"],
            "hint": 'restore env_file=".env"',
        }
    ran = configured if ran is None else ran
    coverage = Coverage.of_run(
        configured, ran, {"replay": "skipped", "checks": "passed"}, requested=list(ran)
    )
    return {
        "schema": 2,
        "run_id": run_id,
        "status": status,
        "exit_code": {"passed": 0, "failed": 1}.get(status, 2),
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T00:01:00+00:00",
        "duration": 60.0,
        "tree": {"hash": tree.hash, "commit": tree.commit, "dirty": tree.dirty},
        "coverage": coverage.to_dict(),
        "phases": [],
        "pipelines": [],
        "settings": {
            "class": "tinyapp.settings:Settings",
            "delivery": "dotenv",
            "model_config": model_config,
            "provenance": provenance or [],
        },
        "notifications": [],
        "diagnosis": diagnosis,
        "notes": [],
    }
