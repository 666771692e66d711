"""What `staging doctor` found: one `Check` per line, gathered in a `DoctorReport`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from staging.errors import StagingError

CheckStatus = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    hint: str = ""


@dataclass
class DoctorReport:
    project: str
    checks: list[Check] = field(default_factory=list)
    backend: str = ""  # what a run would use: docker | process | "" (none)
    provenance: list[dict[str, str]] = field(default_factory=list)
    histories: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """A run could start: no check failed."""
        return all(c.status != "fail" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "project": self.project,
            "backend": self.backend,
            "checks": [asdict(c) for c in self.checks],
            "provenance": self.provenance,
            "histories": self.histories,
        }


def failed(name: str, exc: StagingError) -> Check:
    detail = exc.message
    if exc.observed is not None:
        detail += f" (observed {exc.observed})"
    return Check(name, "fail", detail, exc.hint)
