"""Reports written next to the verdict (JUnit, Markdown, verdict store for the gate).

`publish` runs in the run's finish step, after `verdict.json` is written and before
teardown. Each artifact is written independently — one that fails is reported and the
others are still written — and the gate's record goes first, because a deploy depends
on it. Everything passes the run's redactor; the gate key is registered with it too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from staging.atomic import write_text
from staging.context import ConfigDone, RunContext
from staging.gate.decide import decide
from staging.gate.decision import GateState
from staging.gate.signing import gate_key
from staging.gate.store import NOT_RECORDED, VerdictStore, is_conclusive
from staging.report.changes import (
    Changes,
    ConfigPaths,
    changes_since_green,
    drift_lines_for_console,
    settings_snapshot,
)
from staging.report.junit import render_junit
from staging.report.markdown import render_markdown

__all__ = ["publish", "render_junit", "render_markdown"]

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def _normalised(verdict: dict[str, Any]) -> dict[str, Any]:
    """A verdict whose settings.model_config is plain JSON (the probe hands a dataclass)."""
    settings = verdict.get("settings")
    if isinstance(settings, dict):
        config = settings.get("model_config")
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            settings = {**settings, "model_config": dataclasses.asdict(config)}
            return {**verdict, "settings": settings}
    return verdict


def publish(ctx: RunContext, verdict: dict[str, Any]) -> list[str]:
    """Write every report for this run; return one line per artifact for the console."""
    run_dir = ctx.need(ConfigDone).run_dir
    redactor = ctx.redactor
    key = gate_key()
    if key is not None:
        # Never printed at all; fragments of a human-chosen key would blank ordinary words.
        redactor.add(key.decode("utf-8"), fragments=False)
    verdict = redactor.value(_normalised(verdict))
    lines = [f"verdict: {run_dir / 'verdict.json'}"]

    def step(what: str, action: Callable[[], str | None]) -> None:
        try:
            line = action()
        except Exception as exc:  # one broken artifact must not cost the others
            lines.append(redactor.text(f"could not write {what}: {type(exc).__name__}: {exc}"))
            return
        if line:
            lines.append(line)

    app_dir = ctx.loaded.app_dir if ctx.loaded is not None else None
    store = VerdictStore(app_dir) if app_dir is not None else None
    required = ctx.loaded.config.settings.required if ctx.loaded is not None else []
    annotations = {f.name: f.annotation for f in ctx.probe.fields} if ctx.probe else None
    snapshot = settings_snapshot(verdict, required=required, annotations=annotations)
    passed = verdict.get("status") == "passed"
    diagnosis = verdict.get("diagnosis") or {}
    # An interrupted run says nothing about the code: it must not replace that tree's verdict.
    conclusive = diagnosis.get("class") != "interrupted"

    if store is not None and conclusive:

        def record() -> str | None:
            path = store.record(verdict, key=key)
            if path is None:
                # The store never records an aborted run (exit 2) for the tree: say so.
                return None if is_conclusive(verdict) else NOT_RECORDED
            return f"gate record: {path}{' (signed)' if key else ''}"

        step("the gate record", record)

    changes: Changes | None = None
    if store is not None and app_dir is not None and not passed:
        try:
            changes = _changes(ctx, store, app_dir, verdict, snapshot)
        except Exception as exc:  # the report is still worth writing without the comparison
            lines.append(redactor.text(f"could not compare with the last green run: {exc}"))
    if store is not None and passed:
        step("last-green.json", lambda: _set_green(store, verdict, snapshot))

    markdown = render_markdown(verdict, changes=changes, redact=redactor.text)
    step("report.md", lambda: _save(run_dir / "report.md", markdown))
    step("junit.xml", lambda: _save(run_dir / "junit.xml", render_junit(verdict, redactor.text)))
    summary = os.environ.get(STEP_SUMMARY)
    if summary:
        step("the GitHub step summary", lambda: _append(Path(summary), markdown))
    lines.extend(redactor.text(line) for line in drift_lines_for_console(changes))
    return lines


def _save(path: Path, text: str) -> str:
    write_text(path, text)
    return f"{path.name}: {path}"


def _append(path: Path, text: str) -> str:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return f"job summary: {path}"


def _set_green(store: VerdictStore, verdict: dict[str, Any], snapshot: Any) -> str | None:
    covered = verdict.get("shard") is not None and _shards_cover_tree(store, verdict)
    path = store.set_last_green(verdict, settings=snapshot, shards_cover_tree=covered)
    if path is None:
        return None
    return f"last green: {path}{' (the shards of this tree now cover it)' if covered else ''}"


def _shards_cover_tree(store: VerdictStore, verdict: dict[str, Any]) -> bool:
    """A shard's pass is the tree's last green once the tree's shard verdicts together
    would open the gate (signatures aside: the baseline is for "what changed", not trust)."""
    tree = verdict.get("tree") or {}
    if not isinstance(tree, dict) or not tree.get("hash"):
        return False
    baseline = _RecordedTree(str(tree["hash"]), tree.get("commit"), bool(tree.get("dirty")))
    return decide(store, baseline, key=None, require_signature=False).state is GateState.OPEN


@dataclasses.dataclass(frozen=True)
class _RecordedTree:
    hash: str
    commit: str | None
    dirty: bool


def _changes(
    ctx: RunContext,
    store: VerdictStore,
    app_dir: Path,
    verdict: dict[str, Any],
    snapshot: dict[str, Any] | None,
) -> Changes | None:
    last_green = store.last_green()
    if last_green is None:
        return None
    from staging.workspace import changed_files, diff_text

    config = ctx.loaded.config if ctx.loaded is not None else None
    paths = ConfigPaths.from_config(
        config.settings.class_ if config else None,
        config.worker.command if config else None,
    )
    return changes_since_green(
        last_green,
        verdict,
        snapshot,
        paths=paths,
        changed_files=partial(changed_files, app_dir),
        diff_text=partial(diff_text, app_dir),
    )
