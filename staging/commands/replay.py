"""`staging replay [FILE...]`: replay workflow histories against the app's current code.

The local reproduction path: export a failing production workflow's history
(`temporal workflow show -w ID --output json > h.json`, or the UI's Download) and replay
it here. Without FILEs it replays `[tool.staging.replay] histories`, as the run's replay
phase does. No services are started; the app runs from a workspace copy with placeholder
settings, like `staging doctor`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from staging.config.load import load_config
from staging.doctor import offline_app
from staging.errors import ConfigError
from staging.redact import Redactor
from staging.replay import diagnose, find_histories, history_rows, replay_notes, run_replay_probe


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "replay",
        help="replay workflow histories against the app's current workflow code",
        description="Replay history JSON files (temporal workflow show --output json, or the "
        "Temporal UI's export) against the app's workflow classes; without FILEs, replay "
        "[tool.staging.replay] histories.",
    )
    p.add_argument("files", nargs="*", type=Path, metavar="FILE", help="history JSON file")
    p.add_argument("--project", type=Path, default=Path("."), help="dir with pyproject.toml")
    p.add_argument(
        "--workflow",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        help="workflow class to replay against (repeatable; default: the config's, or "
        "those the worker module imports)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="also fail when the code only ends a closed workflow differently",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.project)
    cfg = loaded.config
    if args.files:
        missing = [str(f) for f in args.files if not f.is_file()]
        if missing:
            raise ConfigError(
                f"no such history file: {', '.join(missing)}",
                expected="history JSON files",
                observed=", ".join(missing),
                hint="export one with: temporal workflow show -w WORKFLOW_ID --output json > FILE",
            )
        files = [f.resolve() for f in args.files]
    elif cfg.replay.histories:
        files = find_histories(loaded.app_dir, cfg.replay.histories, pyproject=loaded.pyproject)
    else:
        raise ConfigError(
            "no history files given and none configured",
            expected="FILE arguments or [tool.staging.replay] histories",
            observed="neither",
            hint='pass FILEs, or set histories = ["tests/histories/*.json"] under '
            "[tool.staging.replay]",
        )
    redactor = Redactor()
    with offline_app(loaded, redactor) as app:
        report = run_replay_probe(
            loaded.python,
            app.workspace.app,
            app.env,
            files,
            workflows=args.workflow or cfg.replay.workflows,
            worker_command=cfg.worker.command,
            timeout=300,
            redactor=redactor,
        )
    diagnosis = diagnose(report, app_dir=loaded.app_dir, strict=args.strict)
    result: dict[str, Any] = {
        "ok": diagnosis is None,
        "workflows": report.workflows,
        "runner": report.runner,
        "histories": history_rows(report, app_dir=loaded.app_dir),
        "notes": replay_notes(report, app_dir=loaded.app_dir, strict=args.strict),
        "diagnosis": diagnosis.to_dict() if diagnosis is not None else None,
    }
    text = json.dumps(result, indent=2) + "\n" if args.json else _plain(result)
    sys.stdout.write(redactor.text(text))
    if diagnosis is None:
        return 0
    return 2 if diagnosis.failure_class.is_infrastructure else 1


def _plain(result: dict[str, Any]) -> str:
    lines = []
    for h in result["histories"]:
        detail = f" — {h['detail']}" if h["detail"] else ""
        who = f"{h['workflow_type'] or '?'} {h['workflow_id'] or ''}".strip()
        lines.append(f"{h['status']:<14} {h['file']} ({who}, {h['events']} events){detail}")
    lines += [f"note: {n}" for n in result["notes"]]
    diagnosis = result["diagnosis"]
    if diagnosis is None:
        shown = ", ".join(result["workflows"]) or "no workflows"
        lines.append(f"replay PASSED against {shown}")
    else:
        lines += ["", f"{diagnosis['class']}: {diagnosis['cause']}"]
        lines += [f"  │ {e}" for e in diagnosis["evidence"]]
        lines += [f"Hint: {diagnosis['hint']}", "replay FAILED"]
    return "\n".join(lines) + "\n"
