"""`report.md`: the verdict in Markdown, diagnosis first when red.

Renders on GitHub (job summary, artifact preview): a phase table, a Mermaid gantt
chart of the phase timeline, settings provenance, captured notifications and — for a
red run after a green one — what changed since it last worked. The caller passes the
run's redactor; every byte goes through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from staging.report.changes import Changes, as_dict

_ICON = {"passed": "✅", "failed": "❌", "aborted": "⚠️", "skipped": "⏭️"}
_GANTT_TAG = {"passed": "done", "failed": "crit", "aborted": "crit"}
_MAX_FILES = 50
_MAX_BODY = 200


def fence(text: str, lang: str = "") -> str:
    """A code fence longer than any backtick run inside, so content cannot close it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def code(text: Any) -> str:
    value = str(text).replace("\n", " ")
    if "`" not in value:
        return f"`{value}`"
    return f"`` {value} ``"


def cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _seconds(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _header(verdict: dict[str, Any]) -> list[str]:
    status = str(verdict.get("status", "?"))
    lines = [
        f"# {_ICON.get(status, '')} staging {status.upper()} · run {code(verdict.get('run_id'))}"
    ]
    facts = []
    tree = verdict.get("tree") or {}
    if tree.get("hash"):
        facts.append(f"tree {code(str(tree['hash'])[:12])}")
    if tree.get("commit"):
        facts.append(
            f"commit {code(str(tree['commit'])[:10])}"
            + (" + uncommitted" if tree.get("dirty") else "")
        )
    if verdict.get("backend"):
        facts.append(f"backend {verdict['backend']}")
    facts.append(f"{_seconds(verdict.get('duration')):.1f}s")
    lines += ["", " · ".join(facts)]
    from staging.gate.coverage import partial_line

    partial = partial_line(verdict)  # a pass of a --pipeline subset: the gate stays shut
    if partial:
        lines += ["", f"> **{partial}**"]
    return lines


def _diagnosis(verdict: dict[str, Any]) -> list[str]:
    diagnosis = verdict.get("diagnosis")
    if not isinstance(diagnosis, dict):
        return []
    lines = [
        "",
        f"## {_ICON.get(str(verdict.get('status')), '')} {code(diagnosis.get('class'))}",
        "",
        str(diagnosis.get("cause", "")),
    ]
    evidence = [str(e) for e in diagnosis.get("evidence") or ()]
    if evidence:
        lines += ["", fence("\n".join(evidence[:40]))]
    if diagnosis.get("hint"):
        lines += ["", f"**Hint:** {diagnosis['hint']}"]
    return lines


def _changes(changes: Changes | None) -> list[str]:
    if changes is None:
        return []
    since = f"run {code(changes.since_run)}, tree {code(changes.since_tree[:12])}"
    if changes.since_commit:
        since += f", commit {code(changes.since_commit[:10])}"
    lines = ["", "## What changed since it last worked", "", f"Last green: {since}."]
    if changes.drift:
        lines += ["", f"**Settings drift:** {code(changes.drift)}"]
    if changes.note:
        lines += ["", changes.note]
    if changes.files:
        config = set(changes.config_files)
        lines += ["", f"Changed files ({len(changes.files)}):", ""]
        ordered = sorted(changes.files, key=lambda f: f.split(" ", 1)[-1] not in config)
        for change in ordered[:_MAX_FILES]:
            mark = " — *touches configuration*" if change.split(" ", 1)[-1] in config else ""
            lines.append(f"- {code(change)}{mark}")
        if len(ordered) > _MAX_FILES:
            lines.append(f"- … and {len(ordered) - _MAX_FILES} more")
    if changes.diff:
        lines += ["", "Diff (configuration first):", "", fence(changes.diff, "diff")]
    return lines


def _phases(verdict: dict[str, Any]) -> list[str]:
    phases = [p for p in verdict.get("phases") or () if isinstance(p, dict)]
    if not phases:
        return []
    lines = ["", "## Phases", "", "| phase | status | duration | summary |", "|---|---|---:|---|"]
    for p in phases:
        status = str(p.get("status"))
        details = p.get("details") or {}
        summary = details.get("summary") or details.get("reason") or ""
        lines.append(
            f"| {cell(p.get('name'))} | {_ICON.get(status, '')} {status} | "
            f"{_seconds(p.get('duration')):.2f}s | {cell(summary)} |"
        )
    lines += [
        "",
        "```mermaid",
        "gantt",
        "    title Phase timeline",
        "    dateFormat x",
        "    axisFormat %M:%S",
        "    section run",
    ]
    for i, p in enumerate(phases):
        tag = _GANTT_TAG.get(str(p.get("status")))
        if tag is None:
            continue  # skipped phases took no time
        start = int(_seconds(p.get("started_at")) * 1000)
        end = start + max(1, int(_seconds(p.get("duration")) * 1000))
        # ':' ends a Mermaid task name and '#'/';' start comments/statements.
        name = re.sub(r"[^A-Za-z0-9 _.()-]", " ", str(p.get("name")))
        lines.append(f"    {name} {_seconds(p.get('duration')):.2f}s :{tag}, p{i}, {start}, {end}")
        swap = (p.get("details") or {}).get("swap_at")
        if isinstance(swap, int | float):  # the rollout's worker swap, as a milestone
            at = int(swap * 1000)
            lines.append(f"    worker swap :milestone, m{i}, {at}, {at}")
    lines.append("```")
    return lines


def _pipelines(verdict: dict[str, Any]) -> list[str]:
    pipelines = verdict.get("pipelines") or []
    if not pipelines:
        return []
    lines = [
        "",
        "## Pipelines",
        "",
        "| pipeline | status | duration | notifications | checks |",
        "|---|---|---:|---:|---|",
    ]
    for p in pipelines:
        checks = p.get("checks") or []
        ok = sum(1 for c in checks if c.get("ok"))
        shown = f"{ok}/{len(checks)} held" if checks else ""
        status = str(p.get("status"))
        lines.append(
            f"| {cell(p.get('name'))} | {_ICON.get(status, '')} {status} | "
            f"{_seconds(p.get('duration')):.2f}s | {p.get('notifications', 0)} | {cell(shown)} |"
        )
    return lines


def _settings(verdict: dict[str, Any]) -> list[str]:
    settings = verdict.get("settings") or {}
    rows = settings.get("provenance") or []
    config = as_dict(settings.get("model_config"))
    if not rows and config is None:
        return []
    lines = ["", "## Settings", ""]
    via = f" · delivered via {settings['delivery']}" if settings.get("delivery") else ""
    lines.append(f"{code(settings.get('class') or '?')}{via}")
    if config is not None:
        lines += ["", "model config: " + " · ".join(code(f"{k}={v!r}") for k, v in config.items())]
    if rows:
        lines += ["", "| field | source | value |", "|---|---|---|"]
        for row in rows:
            secret = str(row.get("secret", "")).lower() in ("yes", "true", "1")
            value = row.get("value")
            if secret and value not in (None, "", "(empty)", "None"):
                value = "***"
            lines.append(
                f"| {cell(row.get('field') or row.get('name'))} | "
                f"{cell(row.get('source'))} | {cell(value)} |"
            )
    return lines


def _body_text(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("text"), str):
        text: str = body["text"]
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, ensure_ascii=False)
    return text if len(text) <= _MAX_BODY else text[:_MAX_BODY] + "…"


def _notifications(verdict: dict[str, Any], shown: int) -> list[str]:
    items = [n for n in verdict.get("notifications") or () if isinstance(n, dict)]
    lines = ["", f"## Notifications captured: {len(items)}"]
    if not items:
        return [*lines, "", "None: nothing would have reached a real channel."]
    lines += ["", "Captured by staging's loopback sinks; none left the machine.", ""]
    for n in items[:shown]:
        lines.append(f"- **{cell(n.get('name', '?'))}**: {code(_body_text(n.get('body')))}")
    if len(items) > shown:
        lines.append(f"- … and {len(items) - shown} more (notifications.json)")
    return lines


def render_markdown(
    verdict: dict[str, Any],
    *,
    changes: Changes | None = None,
    redact: Callable[[str], str] = str,
    notifications_shown: int = 3,
) -> str:
    lines = _header(verdict) + _diagnosis(verdict) + _changes(changes) + _phases(verdict)
    lines += _pipelines(verdict) + _settings(verdict)
    lines += _notifications(verdict, notifications_shown)
    notes = [str(n) for n in verdict.get("notes") or ()]
    if notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in notes)]
    return redact("\n".join(lines) + "\n")
