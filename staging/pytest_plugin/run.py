"""`staging_run`: a whole `staging run` of the app, as a subprocess, read back as a `Verdict`.

A subprocess, not the runner in-process: the run installs signal handlers, owns its own
services and teardown, and prints; none of that belongs inside the test session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PhaseOutcome:
    name: str
    status: str
    duration: float
    details: dict[str, Any]
    failure_class: str | None = None
    cause: str = ""


@dataclass(frozen=True)
class Verdict:
    """A run's verdict: its status, exit code, class, evidence and per-phase results."""

    status: str
    exit_code: int
    failure_class: str | None
    cause: str
    hint: str
    evidence: tuple[str, ...]
    phases: dict[str, PhaseOutcome]
    raw: dict[str, Any] = field(repr=False)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @classmethod
    def from_json(cls, data: Mapping[str, Any], exit_code: int) -> Verdict:
        diagnosis = data.get("diagnosis") or {}
        phases = {}
        for p in data.get("phases") or ():
            pd = p.get("diagnosis") or {}
            phases[str(p["name"])] = PhaseOutcome(
                str(p["name"]),
                str(p.get("status")),
                float(p.get("duration") or 0.0),
                dict(p.get("details") or {}),
                pd.get("class"),
                str(pd.get("cause") or ""),
            )
        return cls(
            status=str(data.get("status")),
            exit_code=exit_code,
            failure_class=diagnosis.get("class"),
            cause=str(diagnosis.get("cause") or ""),
            hint=str(diagnosis.get("hint") or ""),
            evidence=tuple(str(e) for e in diagnosis.get("evidence") or ()),
            phases=phases,
            raw=dict(data),
        )


def run_staging(
    project: Path,
    *,
    backend: str | None = None,
    pipelines: Sequence[str] = (),
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
) -> Verdict:
    command = [sys.executable, "-m", "staging", "run", "--project", str(project), "--json"]
    if backend:
        command += ["--backend", backend]
    for name in pipelines:
        command += ["--pipeline", name]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
    )
    try:
        data = json.loads(done.stdout)
    except ValueError as exc:
        raise RuntimeError(
            f"`staging run --json` printed no verdict (expected one JSON document on stdout; "
            f"observed exit {done.returncode}, stderr tail: {done.stderr[-1500:]!r}). "
            "Hint: run `staging run --project "
            f"{project}` by hand to see what stops it"
        ) from exc
    return Verdict.from_json(data, done.returncode)
