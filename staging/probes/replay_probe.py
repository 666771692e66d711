"""Replay recorded workflow histories against the app's current workflow classes.

Runs in the app's interpreter, with cwd = the app's workspace:

    python replay_probe.py --history FILE [--history FILE ...]
        [--workflow pkg.module:Class ...] [--worker-module pkg.worker | --worker-script F]
        [--out PATH]

It must not import `staging` (the app's interpreter may not have it): stdlib and
temporalio only. The report is one JSON document, written to `--out` or else to the
original stdout; whatever the app prints while importing goes to stderr (fd level).

Workflow classes come from `--workflow` or, when none is given, from importing the worker
module (what `python -m X` would run, minus its `__main__` block) and collecting every
`@workflow.defn` class in the app's modules that import loaded. Importing beats a static
scan for `@workflow.defn`: it sees aliased decorators and re-exports, and it yields the
class objects the Replayer needs, exactly as the worker's own imports define them.

Per history the report says whether it replayed; for a `NondeterminismError` it also
finds the workflow task whose commands diverged, by replaying prefixes that end at a
`WorkflowTaskStarted` event (the last task of a prefix is live, so its commands are not
checked): the first failing prefix pins the task, and the events recorded after that
task's completion are listed so staging can name the event.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TRACEBACK_LINES = 25
# A prefix replay costs one Replayer run; a bisection needs log2(tasks) of them.
MAX_BISECT_STEPS = 16
DEADLOCK = "[TMPRL1101]"
CLOSING_EVENTS = frozenset(
    {
        "WorkflowExecutionCompleted",
        "WorkflowExecutionFailed",
        "WorkflowExecutionCanceled",
        "WorkflowExecutionContinuedAsNew",
    }
)
# The attribute that names what an event is about, per attributes message.
NAME_FIELDS = (
    ("activity_type", "name"),
    ("workflow_type", "name"),
    ("marker_name",),
    ("timer_id",),
    ("signal_name",),
    ("update_id",),
    ("operation",),
)


def camel(enum_name: str) -> str:
    """EVENT_TYPE_ACTIVITY_TASK_SCHEDULED -> ActivityTaskScheduled (the SDK core's spelling)."""
    words = enum_name.removeprefix("EVENT_TYPE_").split("_")
    return "".join(w.capitalize() for w in words if w)


def error_report(exc: BaseException, **extra: Any) -> dict[str, Any]:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(lines).splitlines()[-TRACEBACK_LINES:]
    return {"type": type(exc).__name__, "message": str(exc), "traceback": text, **extra}


def chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# --- histories ------------------------------------------------------------------------------


class Unreadable(Exception):
    """The file is not a workflow history export."""


def load_history(path: str) -> tuple[dict[str, Any], Any]:
    """(facts about the file, a `WorkflowHistory`) or raise `Unreadable`."""
    from temporalio.client import WorkflowHistory

    facts: dict[str, Any] = {"file": path, "workflow_id": None, "workflow_type": None}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Unreadable(f"cannot read the file: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise Unreadable(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        kind = type(data).__name__
        keys = ", ".join(sorted(data)[:6]) if isinstance(data, dict) else kind
        raise Unreadable(f"no 'events' list at the top level (found: {keys or 'nothing'})")
    if not data["events"]:
        raise Unreadable("the 'events' list is empty")
    try:
        history = WorkflowHistory.from_json("pending", {"events": data["events"]})
    except Exception as exc:
        raise Unreadable(f"the events do not parse as Temporal history events: {exc}") from exc
    first = history.events[0]
    if not first.HasField("workflow_execution_started_event_attributes"):
        raise Unreadable(
            f"the first event is {event_type(first)}, not WorkflowExecutionStarted "
            "(a partial or filtered export?)"
        )
    started = first.workflow_execution_started_event_attributes
    # Servers since 1.2x record the workflow id in the start event; older exports do not.
    workflow_id = (
        getattr(started, "workflow_id", "")
        or data.get("workflowId")
        or data.get("workflow_id")
        or Path(path).stem
    )
    facts.update(
        workflow_id=str(workflow_id),
        workflow_type=started.workflow_type.name,
        run_id=started.original_execution_run_id or None,
        events=len(history.events),
    )
    return facts, WorkflowHistory(str(workflow_id), history.events)


def event_type(event: Any) -> str:
    from temporalio.api.enums.v1 import EventType

    try:
        return camel(EventType.Name(event.event_type))
    except ValueError:
        return f"EventType{event.event_type}"


def attributes(event: Any) -> Any:
    which = event.WhichOneof("attributes")
    return getattr(event, which) if which else None


def describe(event: Any) -> dict[str, Any]:
    """A compact, payload-free summary of one event."""
    summary: dict[str, Any] = {"event_id": event.event_id, "event_type": event_type(event)}
    attrs = attributes(event)
    if attrs is None:
        return summary
    for path in NAME_FIELDS:
        value: Any = attrs
        for part in path:
            try:
                value = getattr(value, part)
            except AttributeError:
                value = None
                break
        if isinstance(value, str) and value:
            summary["name"] = value
            break
    for field in ("activity_id", "workflow_task_completed_event_id"):
        value = getattr(attrs, field, None)
        if value:
            summary[field] = value
    return summary


# --- workflow classes -----------------------------------------------------------------------


class ConfigProblem(Exception):
    """A `--workflow` entry does not name a workflow class."""


def definition(obj: Any) -> Any:
    from temporalio.workflow import _Definition

    return _Definition.from_class(obj) if isinstance(obj, type) else None


def configured_workflows(specs: list[str]) -> list[type]:
    classes = []
    for spec in specs:
        module_name, _, qualname = spec.partition(":")
        if not module_name or not qualname:
            raise ConfigProblem(f"{spec!r} is not 'package.module:ClassName'")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise ConfigProblem(f"{spec!r}: no module named {exc.name!r}") from exc
            raise
        obj: Any = module
        for part in qualname.split("."):
            if not hasattr(obj, part):
                raise ConfigProblem(f"{spec!r}: module {module_name} has no attribute {part!r}")
            obj = getattr(obj, part)
        if definition(obj) is None:
            raise ConfigProblem(f"{spec!r} is not a class decorated with @workflow.defn")
        classes.append(obj)
    return classes


def discover_workflows(worker_module: str | None, worker_script: str | None) -> list[type]:
    if worker_module:
        importlib.import_module(worker_module)
    elif worker_script:
        script = Path(worker_script)
        spec = importlib.util.spec_from_file_location("__staging_worker__", script)
        if spec is None or spec.loader is None:
            raise ConfigProblem(f"cannot load the worker script {worker_script}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        sys.path.insert(0, str(script.resolve().parent))
        spec.loader.exec_module(module)
    app = Path.cwd().resolve()
    found: dict[str, type] = {}
    for module in list(sys.modules.values()):
        origin = getattr(module, "__file__", None)
        if not origin or "site-packages" in origin:
            continue
        if not Path(origin).resolve().is_relative_to(app):
            continue
        for obj in list(vars(module).values()):
            defn = definition(obj)
            if defn is not None:
                found.setdefault(defn.name or f"<dynamic {obj.__qualname__}>", obj)
    return list(found.values())


def class_spec(cls: type) -> dict[str, Any]:
    defn = definition(cls)
    return {
        "name": defn.name if defn is not None else None,
        "class": f"{cls.__module__}:{cls.__qualname__}",
    }


# --- replay ---------------------------------------------------------------------------------


def is_sandbox_failure(exc: BaseException) -> bool:
    return any(
        type(e).__name__ == "RestrictedWorkflowAccessError"
        or str(e).startswith("Failed validating workflow")
        for e in chain(exc)
    )


async def replay_one(replayer: Any, history: Any) -> BaseException | None:
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    failure: BaseException | None = result.replay_failure
    return failure


async def locate_task(replayer: Any, history: Any) -> dict[str, Any] | None:
    """The workflow task whose commands no longer match, found by replaying prefixes."""
    from temporalio.client import WorkflowHistory

    events = list(history.events)
    starts = [i for i, e in enumerate(events) if event_type(e) == "WorkflowTaskStarted"]
    if not starts:
        return None
    # Invariant: prefix through starts[lo] replays; prefix through starts[hi] fails
    # (hi == len(starts) stands for the whole history, which failed).
    lo, hi, steps = 0, len(starts), 0
    while hi - lo > 1 and steps < MAX_BISECT_STEPS:
        mid = (lo + hi) // 2
        prefix = WorkflowHistory(history.workflow_id, events[: starts[mid] + 1])
        if await replay_one(replayer, prefix) is None:
            lo = mid
        else:
            hi = mid
        steps += 1
    if hi - lo > 1:
        return None
    started = events[starts[lo]]
    window: list[dict[str, Any]] = []
    completed_id = None
    for event in events[starts[lo] + 1 :]:
        kind = event_type(event)
        if completed_id is None:
            if kind == "WorkflowTaskCompleted":
                completed_id = event.event_id
            continue
        window.append(describe(event))
        if kind == "WorkflowTaskStarted":
            break
    if completed_id is None:
        return None
    closing = [e for e in window if e["event_type"] in CLOSING_EVENTS]
    return {
        "task_started_event_id": started.event_id,
        "task_completed_event_id": completed_id,
        "is_last_task": all(e["event_type"] != "WorkflowTaskStarted" for e in window),
        "closes_workflow": bool(closing),
        "events": window,
    }


def make_replayer(classes: list[type], sandboxed: bool, debug: bool = False) -> Any:
    from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

    # An explicit build id: the default hashes the bytecode of every loaded module (about
    # 0.4 s), and replay never compares build ids.
    if sandboxed:
        return Replayer(workflows=classes, debug_mode=debug, build_id=BUILD_ID)
    return Replayer(
        workflows=classes,
        workflow_runner=UnsandboxedWorkflowRunner(),
        debug_mode=debug,
        build_id=BUILD_ID,
    )


BUILD_ID = "staging-replay-probe"


async def replay_all(
    classes: list[type], loaded: list[tuple[dict[str, Any], Any]], report: dict[str, Any]
) -> None:
    """Replay every history, sandboxed as the worker would be unless the sandbox refuses."""
    try:
        failures = await replay_batch(make_replayer(classes, True), loaded)
        report["runner"] = "sandboxed"
    except Exception as exc:
        if not is_sandbox_failure(exc):
            raise
        # Sandbox validation is the worker phase's verdict (the worker may well run
        # unsandboxed); determinism is this one's, and it does not depend on the sandbox.
        report["runner"] = "unsandboxed"
        report["notes"].append(
            "the workflow classes fail Temporal's default sandbox validation "
            f"({type(exc).__name__}: {exc}); replayed them unsandboxed (the worker phase "
            "judges the sandbox with the worker's own runner)"
        )
        failures = await replay_batch(make_replayer(classes, False), loaded)
    sandboxed = report["runner"] == "sandboxed"
    replayer = make_replayer(classes, sandboxed)
    for (facts, history), failure in zip(loaded, failures, strict=True):
        if failure is not None and DEADLOCK in str(failure):
            # The 2 s deadlock detector also fires on a starved CPU; a real deadlock
            # fails again without it (the probe's own timeout ends a real hang).
            failure = await replay_one(make_replayer(classes, sandboxed, debug=True), history)
            if failure is None:
                report["notes"].append(
                    f"{facts['file']}: the deadlock detector fired; it replayed without it"
                )
        if failure is None:
            facts["ok"] = True
            continue
        from temporalio.workflow import NondeterminismError

        kind = "nondeterminism" if isinstance(failure, NondeterminismError) else "task_failed"
        facts["ok"] = False
        facts["error"] = {"kind": kind, "type": type(failure).__name__, "message": str(failure)}
        if kind == "nondeterminism":
            facts["error"]["task"] = await locate_task(replayer, history)


async def replay_batch(
    replayer: Any, loaded: list[tuple[dict[str, Any], Any]]
) -> list[BaseException | None]:
    histories = [history for _, history in loaded]

    async def feed() -> Any:
        for history in histories:
            yield history

    failures: list[BaseException | None] = []
    # One result per history, in order: replay_workflows() would key them by run id, and
    # two exports of the same run (or a history copied under a new name) share one.
    async with replayer.workflow_replay_iterator(feed()) as results:
        async for result in results:
            failures.append(result.replay_failure)
    return failures


def registered_names(classes: list[type]) -> tuple[set[str], bool]:
    names: set[str] = set()
    dynamic = False
    for cls in classes:
        defn = definition(cls)
        if defn is None:
            continue
        if defn.name is None:
            dynamic = True
        else:
            names.add(defn.name)
    return names, dynamic


def probe(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "probe": "replay",
        "ok": False,
        "error": None,
        "python": sys.version.split()[0],
        "temporalio": None,
        "workflows": [],
        "discovery": None,
        "runner": None,
        "notes": [],
        "histories": [],
    }
    try:
        import temporalio
    except ImportError as exc:
        report["error"] = error_report(exc, stage="temporalio")
        return report
    report["temporalio"] = getattr(temporalio, "__version__", "?")
    try:
        if args.workflow:
            report["discovery"] = "configured"
            classes = configured_workflows(args.workflow)
        elif args.worker_module or args.worker_script:
            report["discovery"] = f"worker {args.worker_module or args.worker_script}"
            classes = discover_workflows(args.worker_module, args.worker_script)
        else:
            raise ConfigProblem("no --workflow given and no worker module to discover them from")
    except ConfigProblem as exc:
        report["error"] = {"stage": "config", "type": "ConfigProblem", "message": str(exc)}
        return report
    except BaseException as exc:
        report["error"] = error_report(exc, stage="import")
        return report
    report["workflows"] = [class_spec(c) for c in classes]
    if not classes:
        report["error"] = {
            "stage": "config",
            "type": "NoWorkflows",
            "message": f"no @workflow.defn class found ({report['discovery']})",
            "traceback": [],
        }
        return report
    names, dynamic = registered_names(classes)
    loaded: list[tuple[dict[str, Any], Any]] = []
    for path in args.history:
        try:
            facts, history = load_history(path)
        except Unreadable as exc:
            entry = {"file": path, "workflow_id": None, "workflow_type": None, "ok": False}
            entry["error"] = {"kind": "unreadable", "type": "Unreadable", "message": str(exc)}
            report["histories"].append(entry)
            continue
        report["histories"].append(facts)
        if facts["workflow_type"] not in names and not dynamic:
            facts["ok"] = False
            facts["error"] = {
                "kind": "unregistered",
                "type": "NotRegistered",
                "message": f"workflow type {facts['workflow_type']!r} is not registered; "
                f"registered: {', '.join(sorted(names)) or 'none'}",
            }
            continue
        loaded.append((facts, history))
    try:
        if loaded:
            asyncio.run(replay_all(classes, loaded, report))
    except BaseException as exc:
        report["error"] = error_report(exc, stage="replay")
        return report
    report["ok"] = True
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--history", action="append", default=[], help="history JSON file")
    parser.add_argument("--workflow", action="append", default=[], help="module:Class")
    parser.add_argument("--worker-module", help="discover workflows by importing this module")
    parser.add_argument("--worker-script", help="discover workflows by loading this script")
    parser.add_argument("--out", help="write the JSON report here instead of stdout")
    args = parser.parse_args(argv)
    # Everything the app prints (Python or C level) goes to stderr, not into the report.
    sys.stdout.flush()
    report_fd = os.dup(1)
    os.dup2(2, 1)
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [os.getcwd()] + [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.argv = [sys.argv[0]]
    try:
        report = probe(args)
    except BaseException as exc:  # still answer with a document
        report = {"probe": "replay", "ok": False, "histories": [], "notes": []}
        report["error"] = error_report(exc, stage="probe")
    text = json.dumps(report, indent=1, default=str)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        with os.fdopen(report_fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
