"""Run `probes/replay_probe.py` in the app's interpreter and read its report.

The probe replays with temporalio's `Replayer` where the app's code and dependencies
live; this side finds the history files, chooses how the probe gets the workflow classes
(`[tool.staging.replay] workflows`, else the worker command's module) and turns the JSON
into typed results.
"""

from __future__ import annotations

import contextlib
import glob
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from staging.errors import ConfigError
from staging.probes.runner import run_probe_script
from staging.redact import Redactor

if TYPE_CHECKING:
    from staging.forkserver.client import ForkServer
from staging.replay.messages import Divergence, core_messages, locate, parse_nondeterminism

REPLAY_PROBE = Path(__file__).resolve().parent.parent / "probes" / "replay_probe.py"


@dataclass(frozen=True)
class HistoryResult:
    file: str
    ok: bool
    workflow_id: str | None = None
    workflow_type: str | None = None
    run_id: str | None = None
    events: int = 0
    kind: str | None = None  # unreadable | unregistered | nondeterminism | task_failed
    error_type: str | None = None
    message: str = ""  # the SDK's message, unwrapped
    divergence: Divergence | None = None
    at_close: bool = False  # diverged only in the final task of a closed workflow

    def label(self, app_dir: Path | None = None) -> str:
        return _shown_path(self.file, app_dir)


@dataclass(frozen=True)
class ReplayReport:
    ok: bool  # the probe ran to the end (per-history results say whether they replayed)
    histories: list[HistoryResult] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)  # "Name (module:Class)"
    discovery: str = ""
    runner: str = ""
    notes: list[str] = field(default_factory=list)
    error_stage: str = ""  # temporalio | config | import | replay | probe | run
    error_type: str = ""
    error_message: str = ""
    traceback: tuple[str, ...] = ()
    stderr_tail: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, stderr_tail: str = "") -> ReplayReport:
        error = data.get("error") or {}
        return cls(
            ok=bool(data.get("ok")),
            histories=[_history(h) for h in data.get("histories") or ()],
            workflows=[
                f"{w.get('name') or '<dynamic>'} ({w.get('class')})"
                for w in data.get("workflows") or ()
            ],
            discovery=str(data.get("discovery") or ""),
            runner=str(data.get("runner") or ""),
            notes=[str(n) for n in data.get("notes") or ()],
            error_stage=str(error.get("stage") or ""),
            error_type=str(error.get("type") or ""),
            error_message=str(error.get("message") or ""),
            traceback=tuple(str(line) for line in error.get("traceback") or ()),
            stderr_tail=stderr_tail,
        )

    @classmethod
    def failed(cls, stage: str, kind: str, message: str, tail: str = "") -> ReplayReport:
        return cls(
            False, error_stage=stage, error_type=kind, error_message=message, stderr_tail=tail
        )


def _history(data: Mapping[str, Any]) -> HistoryResult:
    error = data.get("error") or {}
    kind = error.get("kind")
    raw = str(error.get("message") or "")
    divergence = None
    task = error.get("task")
    if kind == "nondeterminism":
        divergence = locate(parse_nondeterminism(raw), task)
    at_close = bool(task and task.get("is_last_task") and task.get("closes_workflow"))
    return HistoryResult(
        file=str(data.get("file") or "?"),
        ok=bool(data.get("ok")),
        workflow_id=data.get("workflow_id"),
        workflow_type=data.get("workflow_type"),
        run_id=data.get("run_id"),
        events=int(data.get("events") or 0),
        kind=kind,
        error_type=error.get("type"),
        message=": ".join(core_messages(raw)[:3]) if kind == "task_failed" else raw,
        divergence=divergence,
        at_close=kind == "nondeterminism" and at_close,
    )


def _shown_path(file: str, app_dir: Path | None) -> str:
    if app_dir is not None:
        with contextlib.suppress(ValueError):
            return str(Path(file).resolve().relative_to(app_dir.resolve()))
    return file


# --- finding histories and running the probe ------------------------------------------------


def find_histories(app_dir: Path, patterns: Sequence[str], *, pyproject: Path) -> list[Path]:
    """Every file the globs (relative to the app) match, sorted; a glob matching none fails."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(app_dir / pattern)
        matches = sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
        if not matches:
            raise ConfigError(
                f"tool.staging.replay.histories in {pyproject}: {pattern!r} matches no file",
                expected=f"history JSON files under {app_dir}",
                observed=f"{pattern!r} -> nothing",
                hint="record some with `staging run --record tests/histories` (or export one: "
                "temporal workflow show -w ID --output json > FILE), or fix the glob",
            )
        found.update(dict.fromkeys(p.resolve() for p in matches))
    return list(found)


def worker_target(command: Sequence[str]) -> tuple[str, str] | None:
    """("module", X) for `python -m X ...`, ("script", F) for `python F.py ...`, else None."""
    if not command or not Path(command[0]).name.startswith("python"):
        return None
    args = list(command[1:])
    while args and args[0].startswith("-") and args[0] != "-m":
        # Interpreter flags; -X and -W take a value.
        args = args[2:] if args[0] in ("-X", "-W") else args[1:]
    if len(args) >= 2 and args[0] == "-m":
        return "module", args[1]
    if args and args[0].endswith(".py"):
        return "script", args[0]
    return None


def run_replay_probe(
    python: str,
    cwd: Path,
    env: Mapping[str, str],
    histories: Sequence[Path],
    *,
    workflows: Sequence[str] = (),
    worker_command: Sequence[str] = (),
    timeout: float = 120,
    redactor: Redactor | None = None,
    cancel: threading.Event | None = None,
    forkserver: ForkServer | None = None,
) -> ReplayReport:
    """Replay `histories` in `python`, cwd=`cwd`, exactly `env`; never raises for app faults."""
    args: list[str] = []
    for history in histories:
        args += ["--history", str(history)]
    for spec in workflows:
        args += ["--workflow", spec]
    target = None if workflows else worker_target(worker_command)
    if target is not None:
        args += [f"--worker-{target[0]}", target[1]]
    run = run_probe_script(
        REPLAY_PROBE,
        args,
        python=python,
        cwd=cwd,
        env=env,
        timeout=timeout,
        redactor=redactor,
        cancel=cancel,
        tmp_prefix="staging-replay-",
        forkserver=forkserver,
        strip_ansi=True,  # the SDK core colours its log lines
    )
    if run.data is None:
        failure = run.failure(f"replaying {len(histories)} histories", "the replay probe")
        return ReplayReport.failed("run", *failure)
    report = ReplayReport.from_json(run.data, stderr_tail=run.stderr_tail)
    if not workflows and target is None and report.error_stage == "config":
        shown = " ".join(worker_command)
        return replace(
            report,
            error_message=f"cannot discover workflow classes: the worker command ({shown}) is "
            "not `python -m MODULE` or `python SCRIPT.py`",
        )
    return report
