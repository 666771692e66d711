"""Turn a replay report into at most one diagnosis, plus notes and a per-history table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from staging.evidence import build_evidence, last_traceback
from staging.replay.probe import HistoryResult, ReplayReport
from staging.result import Diagnosis, FailureClass
from staging.temporal.sandbox import sandbox_hint

# The primary failure when several histories fail: the code's fault before the input's.
_PRECEDENCE = ("nondeterminism", "unregistered", "task_failed", "unreadable")
_BLOCKED = re.compile(r"Cannot access (?P<name>[\w.]+) from inside a workflow")
_REEXPORT = "temporal workflow show -w WORKFLOW_ID --output json > FILE (or the UI's Download)"


def diagnose(
    report: ReplayReport,
    *,
    app_dir: Path,
    strict: bool = False,
    worker_command: Sequence[str] = (),
) -> Diagnosis | None:
    """None when every history replays (a divergence at a closed workflow's end is a note).

    `worker_command` (the configured one) is named in the hint when the app's code fails.
    """
    if not report.ok:
        return _probe_failure(report, worker_command)
    failed = [h for h in report.histories if not h.ok and (strict or not h.at_close)]
    if not failed:
        return None
    failed.sort(key=lambda h: _PRECEDENCE.index(h.kind) if h.kind in _PRECEDENCE else 99)
    first = failed[0]
    evidence = _history_evidence(first, app_dir)
    evidence += [f"also: {_one_line(h, app_dir)}" for h in failed[1:6]]
    evidence.append(
        f"replayed {_count(len(report.histories))} ({report.runner or 'no'} runner) against "
        f"{', '.join(report.workflows) or 'no workflows'} [{report.discovery}]"
    )
    label = first.label(app_dir)
    who = f"{label} (workflow {first.workflow_id}, type {first.workflow_type})"
    if first.kind == "unreadable":
        return Diagnosis(
            FailureClass.CONFIG_INVALID,
            f"{label} is not a readable workflow history: {first.message}",
            hint=f"re-export it: {_REEXPORT}, or drop it from [tool.staging.replay] histories",
            evidence=tuple(evidence),
        )
    if first.kind == "unregistered":
        return Diagnosis(
            FailureClass.REPLAY_NONDETERMINISM,
            f"{who} cannot replay: this code does not register that workflow type "
            f"({first.message})",
            hint="a renamed class keeps its type with "
            f'@workflow.defn(name="{first.workflow_type}"); if the worker does register it, '
            "list the class in [tool.staging.replay] workflows",
            evidence=tuple(evidence),
        )
    reproduce = f"reproduce with `staging replay {label}`"
    if first.kind == "nondeterminism" and first.divergence is not None:
        ending = " (where the recorded workflow ended)" if first.at_close else ""
        return Diagnosis(
            FailureClass.REPLAY_NONDETERMINISM,
            f"{who} no longer replays against this code{ending}: {first.divergence.describe()}",
            hint="workflows already running would fail on the new worker: keep their path with "
            '`if workflow.patched("<change-id>"): <new code> else: <old code>` (or ship the '
            f"change as a new workflow type); {reproduce}",
            evidence=tuple(evidence),
        )
    sandbox = _sandbox_violation(first, report, app_dir)
    if sandbox is not None:
        blocked, where = sandbox
        at = f" at {where.split(' in ', 1)[0]}" if where else ""
        # The exception and the workflow's own line lead; the history facts follow.
        lead: tuple[str, ...] = ()
        if where:
            lead = (f"RestrictedWorkflowAccessError: Cannot access {blocked}", f"at {where}")
        return Diagnosis(
            FailureClass.REPLAY_NONDETERMINISM,
            f"{who}: the workflow code now fails while replaying it: Temporal's workflow "
            f"sandbox blocked {blocked}{at}",
            hint=f"{sandbox_hint(blocked)}; running workflows would be stuck retrying that "
            f"workflow task; {reproduce}",
            evidence=(*lead, *evidence),
        )
    return Diagnosis(
        FailureClass.REPLAY_NONDETERMINISM,
        f"{who}: the workflow code now fails while replaying it: {first.message}",
        hint="the new code raises on a path recorded workflows took, so running ones would be "
        f"stuck retrying that workflow task; {reproduce}",
        evidence=tuple(evidence),
    )


def _sandbox_violation(
    h: HistoryResult, report: ReplayReport, app_dir: Path
) -> tuple[str, str] | None:
    """(what the sandbox blocked, the workflow's `file:line in func: code`) at replay.

    The replay result carries only the message; the SDK logged the workflow task's
    traceback to the probe's stderr, where the workflow's own frame is.
    """
    match = _BLOCKED.search(h.message)
    if match is None:
        return None
    blocked = match["name"].removesuffix(".__call__")
    tb = last_traceback(report.stderr_tail)
    frames = tb.app_frames() if tb is not None and blocked in tb.root.message else []
    if not frames:
        return blocked, ""
    frame = frames[0]
    # The probe ran in the workspace copy: name the file as the app has it.
    parts = Path(frame.file).parts
    rel = next(
        (Path(*parts[i:]) for i in range(1, len(parts)) if (app_dir / Path(*parts[i:])).is_file()),
        None,
    )
    return blocked, replace(frame, file=rel.as_posix()).render() if rel else frame.render()


def replay_notes(report: ReplayReport, *, app_dir: Path, strict: bool = False) -> list[str]:
    """What passed with a caveat: the sandbox fallback, divergences at a closed end."""
    notes = list(report.notes)
    if not strict:
        for h in report.histories:
            if h.at_close and h.divergence is not None:
                notes.append(
                    f"{h.label(app_dir)}: the code now ends {h.workflow_type} differently "
                    f"({h.divergence.describe()}); only workflows that already closed took "
                    "that path, so running ones still replay"
                )
    return notes


def history_rows(report: ReplayReport, *, app_dir: Path) -> list[dict[str, str]]:
    """One row per history for the console, the report and `--json`."""
    rows = []
    for h in report.histories:
        status = "ok" if h.ok else "ok (differs at close)" if h.at_close else h.kind or "failed"
        detail = ""
        if h.divergence is not None:
            detail = h.divergence.describe()
        elif not h.ok:
            detail = h.message
        rows.append(
            {
                "file": h.label(app_dir),
                "workflow_id": h.workflow_id or "",
                "workflow_type": h.workflow_type or "",
                "events": str(h.events),
                "status": status,
                "detail": detail,
            }
        )
    return rows


def _count(n: int) -> str:
    return f"{n} history" if n == 1 else f"{n} histories"


def _one_line(h: HistoryResult, app_dir: Path) -> str:
    what = h.divergence.describe() if h.divergence is not None else h.message
    return f"{h.label(app_dir)} [{h.kind}]: {what}"


def _history_evidence(h: HistoryResult, app_dir: Path) -> list[str]:
    lines = [f"history {h.label(app_dir)}: {h.events} events, run {h.run_id}"] if h.events else []
    div = h.divergence
    if div is not None:
        lines.append(f"replay: {div.detail}")
        if div.task_completed_event_id is not None:
            lines.append(
                f"diverging workflow task: the one completed at event {div.task_completed_event_id}"
            )
    elif h.message:
        lines.append(f"replay: {h.message}")
    return lines


def _probe_failure(report: ReplayReport, worker_command: Sequence[str] = ()) -> Diagnosis:
    stage, kind, message = report.error_stage, report.error_type, report.error_message
    trace = "\n".join(report.traceback)
    evidence = list(build_evidence(trace)) if trace.strip() else []
    if not evidence and report.stderr_tail:
        evidence = ["output:", *report.stderr_tail.splitlines()[-10:]]
    if stage == "temporalio" or kind == "ProbeNotStarted":
        return Diagnosis(
            FailureClass.CONFIG_INVALID,
            f"the app's interpreter cannot run the replay: {kind}: {message}",
            hint="install temporalio into the interpreter [tool.staging] python names "
            "(the app's own requirements)",
            evidence=tuple(evidence),
        )
    if stage == "config":
        return Diagnosis(
            FailureClass.CONFIG_INVALID,
            f"tool.staging.replay.workflows: {message}",
            hint="list the workflow classes: [tool.staging.replay] workflows = "
            '["yourapp.workflows:YourWorkflow"]',
            evidence=tuple(evidence),
        )
    if stage in ("import", "replay") or kind == "ProbeTimeout":
        doing = "importing the app's workflow code" if stage != "replay" else "building a Replayer"
        command = f"`{' '.join(worker_command)}`" if worker_command else "the worker command"
        return Diagnosis(
            FailureClass.WORKER_CRASHED,
            f"{doing} for the replay failed: {kind}: {message}",
            hint="the worker imports the same code and would fail the same way; run "
            f"{command} in the app dir to reproduce",
            evidence=tuple(evidence),
        )
    return Diagnosis(
        FailureClass.INTERNAL_ERROR,
        f"the replay probe failed: {kind}: {message}",
        hint="this is a bug in staging; please report it with the output below",
        evidence=tuple(evidence),
    )
