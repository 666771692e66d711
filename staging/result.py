"""The vocabulary every phase speaks: a status, a diagnosis, a phase result.

A `PhaseResult` is truthy when the phase passed, so the runner can say
`if not result: stop`. A `Diagnosis` carries exactly one failure class, a cause in
plain words, redacted evidence and a `Hint:` with the narrowest fix.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # the app is broken: exit 1
    ABORTED = "aborted"  # infrastructure or config stopped the run: exit 2
    SKIPPED = "skipped"


class FailureClass(enum.StrEnum):
    CONFIG_INVALID = "config.invalid"
    SERVICES_UNAVAILABLE = "services.unavailable"
    SETTINGS_LOAD_ERROR = "settings.load_error"
    SETTINGS_SECRET_MISSING = "settings.secret_missing"
    SETTINGS_EGRESS = "settings.egress"
    SETUP_FAILED = "setup.failed"
    WORKER_SANDBOX = "worker.sandbox"
    WORKER_CRASHED = "worker.crashed"
    WORKER_NOT_POLLING = "worker.not_polling"
    DB_AUTH_FAILED = "db.auth_failed"
    PIPELINE_FAILED = "pipeline.failed"
    PIPELINE_STUCK_RETRYING = "pipeline.stuck_retrying"
    PIPELINE_TIMEOUT = "pipeline.timeout"
    CHECK_FAILED = "check.failed"
    NOTIFICATIONS_FLOOD = "notifications.flood"
    REPLAY_NONDETERMINISM = "replay.nondeterminism"
    # Wave 2 (ARCHITECTURE.md): see the issues for the exact behaviour of each.
    WORKSPACE_SHADOWED = "workspace.shadowed"
    SETTINGS_IGNORED = "settings.ignored"
    SERVICES_LOST = "services.lost"
    ENVIRONMENT_UNWRITABLE = "environment.unwritable"
    ROLLOUT_NONDETERMINISM = "rollout.nondeterminism"
    ROLLOUT_STUCK = "rollout.stuck"
    PIPELINE_NOT_IDEMPOTENT = "pipeline.not_idempotent"
    INTERRUPTED = "interrupted"
    INTERNAL_ERROR = "internal.error"

    @property
    def is_infrastructure(self) -> bool:
        """Infrastructure/config failures abort the run (exit 2) rather than fail it."""
        return self in _INFRASTRUCTURE


_INFRASTRUCTURE = frozenset(
    {
        FailureClass.CONFIG_INVALID,
        FailureClass.SERVICES_UNAVAILABLE,
        FailureClass.SERVICES_LOST,
        FailureClass.ENVIRONMENT_UNWRITABLE,
        FailureClass.INTERNAL_ERROR,
    }
)


@dataclass(frozen=True)
class Diagnosis:
    failure_class: FailureClass
    cause: str
    hint: str
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.failure_class.value,
            "cause": self.cause,
            "evidence": list(self.evidence),
            "hint": self.hint,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        return cls(
            failure_class=FailureClass(data["class"]),
            cause=str(data["cause"]),
            hint=str(data["hint"]),
            evidence=tuple(str(e) for e in data.get("evidence", ())),
        )


@dataclass
class PhaseResult:
    name: str
    status: Status
    duration: float = 0.0
    started_at: float = 0.0  # seconds since the run started, for the timeline
    details: dict[str, Any] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None

    def __bool__(self) -> bool:
        return self.status in (Status.PASSED, Status.SKIPPED)

    @classmethod
    def passed(cls, name: str, **details: Any) -> PhaseResult:
        return cls(name=name, status=Status.PASSED, details=dict(details))

    @classmethod
    def skipped(cls, name: str, reason: str) -> PhaseResult:
        return cls(name=name, status=Status.SKIPPED, details={"reason": reason})

    @classmethod
    def failed(cls, name: str, diagnosis: Diagnosis, **details: Any) -> PhaseResult:
        status = Status.ABORTED if diagnosis.failure_class.is_infrastructure else Status.FAILED
        return cls(name=name, status=status, details=dict(details), diagnosis=diagnosis)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "duration": round(self.duration, 3),
            "started_at": round(self.started_at, 3),
            "details": self.details,
            "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None,
        }
