"""Save the workflow histories of a run, so the next change is replayed against them.

`staging run --record DIR` calls this after a green run, before teardown, while the
throwaway namespace still holds every workflow the run started. Each history is written
as `temporal workflow show --output json` writes it (`{"events": [...]}`), which is also
what the Temporal UI exports and what `staging replay` reads, one file per run, named by
the workflow id.

Where: by default `.staging/histories/` in the app (`record_target`), which is not part
of the deployed tree, so recording does not change the tree hash the run's verdict is
keyed by. Histories written into the app itself change that tree (untracked files are
deployed), so the gate stays closed until staging runs on it again; the caller says so.

A history carries the run's payloads: workflow inputs, activity results, failure
messages. A history in which any of the run's secrets appears (raw, escaped, or inside a
base64 payload) is not written; the caller is told which and why.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from staging.atomic import write_json
from staging.redact import Redactor
from staging.services.base import TemporalEndpoint
from staging.services.connect import temporal_client
from staging.state import STATE_DIRNAME
from staging.temporal.scope import WHOLE_NAMESPACE, RunScope

EventSink = Callable[[str], None]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# `staging run --record` without DIR; resolved against the app, not the current directory.
RECORD_DEFAULT = Path(STATE_DIRNAME) / "histories"


@dataclass(frozen=True)
class RecordTarget:
    path: Path
    in_app: bool  # inside the app and outside `.staging/`: it changes the deployed tree


def record_target(app_dir: Path, requested: Path | None) -> RecordTarget:
    """Where histories go: `requested` (absolute, or relative to the current directory),
    or `.staging/histories/` in the app when None (or `RECORD_DEFAULT`)."""
    app = Path(app_dir).resolve()
    if requested is None or requested == RECORD_DEFAULT:
        return RecordTarget(app / RECORD_DEFAULT, in_app=False)
    path = Path(requested).resolve()
    inside = path == app or app in path.parents
    state = app / STATE_DIRNAME
    return RecordTarget(path, in_app=inside and path != state and state not in path.parents)


def recorded_lines(target: RecordTarget, saved: Sequence[Path]) -> list[str]:
    """What to tell the user: where the files went, and what that does to the gate."""
    lines = [f"recorded {len(saved)} workflow history file(s) in {target.path}"]
    if not saved:
        return lines
    if target.in_app:
        lines.append(
            "they are in the app's tree, so its tree hash changed: `staging gate` stays "
            "closed until staging runs on it again (commit them, then `staging run`)"
        )
    else:
        lines.append(
            "outside the deployed tree, so the gate is unaffected; to replay them on every "
            "run, move them into the app (or use `staging record --into-app`), list them in "
            "[tool.staging.replay] histories, commit, and run staging again"
        )
    return lines


def history_filename(workflow_id: str, run_id: str, taken: set[str]) -> str:
    """`<workflow id>.json`, made filesystem-safe; a second run of the same id gets a suffix."""
    stem = _UNSAFE.sub("_", workflow_id).strip("._") or "workflow"
    name = f"{stem}.json"
    suffix = 0
    while name in taken:
        suffix += 1
        name = f"{stem}-{run_id[:8]}{'-' + str(suffix) if suffix > 1 else ''}.json"
    taken.add(name)
    return name


def _payload_texts(node: Any) -> Iterator[str]:
    """The decoded `data` of every payload in a history's JSON (they are base64 there)."""
    if isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, str) and isinstance(node.get("metadata"), dict):
            with contextlib.suppress(binascii.Error, ValueError):
                yield base64.b64decode(data, validate=True).decode("utf-8", "replace")
        for value in node.values():
            yield from _payload_texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _payload_texts(value)


def holds_secret(document: dict[str, Any], redactor: Redactor) -> bool:
    """True when a secret appears in the history's text or in any decoded payload."""
    # Plain substring checks: payloads are long base64 runs, which regex-based redaction
    # scans in quadratic time.
    needles = redactor.secrets
    texts = [json.dumps(document), *_payload_texts(document)]
    return any(needle in text for text in texts for needle in needles)


async def export_histories(
    client: Client,
    dest_dir: Path,
    *,
    scope: RunScope = WHOLE_NAMESPACE,
    query: str | None = None,
    redactor: Redactor | None = None,
    on_event: EventSink | None = None,
) -> list[Path]:
    """Write the history of every workflow of `scope` (and matching `query`).

    Returns the files written, in workflow start order. Histories holding a secret known
    to `redactor` are skipped and reported through `on_event`.
    """
    emit = on_event or (lambda _message: None)
    executions = [wf async for wf in client.list_workflows(scope.query(query))]
    executions.sort(key=lambda wf: (wf.start_time, wf.id, wf.run_id))
    dest_dir.mkdir(parents=True, exist_ok=True)
    # Never overwrite a file already there (a user's recorded history).
    taken: set[str] = {p.name for p in dest_dir.iterdir()}
    written: list[Path] = []
    for wf in executions:
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        document = history.to_json_dict()
        if redactor is not None and holds_secret(document, redactor):
            emit(
                f"not recording workflow {wf.id} ({wf.workflow_type}): its history contains "
                "a secret of this run (a payload or failure message carries it)"
            )
            continue
        path = dest_dir / history_filename(wf.id, wf.run_id, taken)
        write_json(path, document)
        written.append(path)
    return written


def record_histories(
    temporal: TemporalEndpoint,
    dest_dir: Path,
    *,
    scope: RunScope = WHOLE_NAMESPACE,
    redactor: Redactor | None = None,
    on_event: EventSink | None = None,
) -> list[Path]:
    """Synchronous `export_histories` against a Temporal frontend, for the run's teardown."""

    async def export() -> list[Path]:
        client = await temporal_client(temporal)
        return await export_histories(
            client, dest_dir, scope=scope, redactor=redactor, on_event=on_event
        )

    return asyncio.run(export())
