"""Recognise Temporal's workflow sandbox refusing the worker's code, and name the culprit.

When a worker is constructed, temporalio re-imports each workflow's module inside the
sandbox; anything non-deterministic reached at import time (`random`, `datetime.now`,
file I/O) raises `RestrictedWorkflowAccessError` and the worker dies with
`RuntimeError: Failed validating workflow X`. The blocked name is usually deep inside a
third-party library (`rich.style` calling `random.getrandbits`) that the workflow module
imported (`structlog`): the fix is to pass *that import* through, so the parser walks
the traceback's import chain to find it. At run time the same error fails workflow tasks
instead ("Failed activation on workflow X"), and the worker keeps running.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from staging.result import Diagnosis, FailureClass

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MARKERS = ("RestrictedWorkflowAccessError", "Failed validating workflow", "from inside a workflow")
_BLOCKED = re.compile(r"Cannot access (?P<name>[\w.]+) from inside a workflow[^\"\n]*")
_EXC_LINE = re.compile(r"RestrictedWorkflowAccessError: (?P<msg>[^\n]*)")
_VALIDATION = re.compile(r"Failed validating workflow (?P<wf>[\w.-]+)")
_ACTIVATION = re.compile(r"Failed activation on workflow (?P<wf>[\w.-]+)")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)$')
_PACKAGES_DIR = re.compile(r"[/\\](?:site|dist)-packages[/\\](?P<rel>.+)$")

# Workflow-safe replacements for what workflow code most often reaches for.
_SAFE = (
    (re.compile(r"^datetime\.(datetime|date)\.(now|utcnow|today)"), "workflow.now()"),
    (re.compile(r"^time\.(time|monotonic|perf_counter)"), "workflow.now() / workflow.time()"),
    (re.compile(r"^time\.sleep"), "await workflow.sleep()"),
    (re.compile(r"^random\."), "workflow.random()"),
    (re.compile(r"^uuid\.uuid[14]"), "workflow.uuid4()"),
)


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    func: str
    code: str = ""

    @property
    def module(self) -> str | None:
        """Dotted name for an installed package's file; None for the app's own files."""
        match = _PACKAGES_DIR.search(self.file)
        if not match:
            return None
        rel = match["rel"].replace("\\", "/").removesuffix(".py").removesuffix("/__init__")
        return rel.replace("/", ".")

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class SandboxError:
    blocked: str  # what the sandbox refused, e.g. "random.getrandbits"
    message: str  # the RestrictedWorkflowAccessError's message
    phase: Literal["validation", "runtime"]
    workflow: str | None = None  # the workflow's registered name (its class, usually)
    module: str | None = None  # the third-party import to pass through, e.g. "structlog"
    packages: tuple[str, ...] = ()  # installed packages on the import chain, in order
    workflow_file: str | None = None
    import_line: str | None = None  # the workflow module's line that started it
    location: str | None = None  # file:line of the blocked access

    def cause(self) -> str:
        who = f"workflow {self.workflow}" if self.workflow else "a workflow"
        when = "while validating" if self.phase == "validation" else "while running"
        text = f"Temporal's workflow sandbox blocked {self.blocked} {when} {who}"
        if self.module:
            text += f": it is reached by importing {self.module!r}"
            if len(self.packages) > 1:
                text += f" ({' -> '.join(self.packages)})"
        elif self.location:
            text += f" (at {self.location})"
        return text

    def hint(self) -> str:
        blunt = (
            "UnsandboxedWorkflowRunner() also makes this go away, but it is the blunt fix: "
            "it switches off every determinism check for all workflows"
        )
        if self.module:
            at = ""
            if self.import_line and self.workflow_file:
                at = f" (`{self.import_line}` in {self.workflow_file})"
            return (
                f"pass {self.module!r} through the sandbox: wrap the import that pulls it in"
                f"{at} in `with workflow.unsafe.imports_passed_through():`, or build the "
                f"worker with SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default"
                f".with_passthrough_modules({self.module!r})). {blunt}"
            )
        safe = next((s for p, s in _SAFE if p.search(self.blocked)), None)
        fix = f"use {safe} instead" if safe else "move it into an activity"
        return (
            f"workflow code must be deterministic: {fix} of {self.blocked}; if the module "
            f"that calls it is not workflow code, import it inside "
            f"`with workflow.unsafe.imports_passed_through():`. {blunt}"
        )

    def diagnosis(self, redact: Callable[[str], str] = lambda s: s) -> Diagnosis:
        evidence = [f"RestrictedWorkflowAccessError: {self.message}"]
        if self.import_line and self.workflow_file:
            evidence.append(f"{self.workflow_file}: {self.import_line}")
        if self.location:
            evidence.append(f"blocked at {self.location}")
        return Diagnosis(
            failure_class=FailureClass.WORKER_SANDBOX,
            cause=redact(self.cause()),
            hint=redact(self.hint()),
            evidence=tuple(redact(e) for e in evidence),
        )


def _normalise(text: str) -> str:
    text = _ANSI.sub("", text)
    # Tracebacks embedded in log records (the core's "Failing workflow task" line, JSON
    # logs) carry escaped newlines and quotes; unescape a copy so frames parse.
    if "\\n" in text:
        text += "\n" + text.replace("\\n", "\n").replace('\\"', '"')
    return text


def _frames_before(lines: list[str], index: int) -> list[Frame]:
    """The frames of the traceback whose exception line is `lines[index]`."""
    start = max(0, index - 1)
    while start > 0 and not lines[start].startswith("Traceback (most recent call last)"):
        start -= 1
    frames: list[Frame] = []
    for i in range(start, index):
        match = _FRAME.match(lines[i])
        if match:
            nxt = lines[i + 1].strip() if i + 1 < index else ""
            code = "" if _FRAME.match(lines[i + 1]) or nxt.startswith("^") else nxt
            frames.append(Frame(match["file"], int(match["line"]), match["func"], code))
    return frames


def _is_machinery(frame: Frame) -> bool:
    return (
        "/temporalio/" in frame.file.replace("\\", "/")
        or frame.file.startswith("<")
        or "importlib" in frame.file
    )


def parse_sandbox_error(worker_output: str) -> SandboxError | None:
    """The sandbox failure in a worker's output, or None if there is none."""
    if not any(marker in worker_output for marker in _MARKERS):
        return None
    text = _normalise(worker_output)
    blocked_match = _BLOCKED.search(text)
    message_match = _EXC_LINE.search(text)
    if blocked_match is None and message_match is None:
        return None
    blocked = blocked_match["name"].removesuffix(".__call__") if blocked_match else "?"
    if message_match is not None:
        message = message_match["msg"].strip()
    else:
        message = blocked_match.group(0) if blocked_match else blocked
    validation = _VALIDATION.search(text)
    named = validation or _ACTIVATION.search(text)
    workflow = named["wf"] if named else None

    lines = text.splitlines()
    exc_index = next((i for i, line in enumerate(lines) if _EXC_LINE.search(line)), None)
    # Without a printed exception line (a failure inside a log record) take every frame.
    frames = _frames_before(lines, exc_index if exc_index is not None else len(lines))
    own = [f for f in frames if not _is_machinery(f)]
    location = own[-1].where() if own else None

    modules = [f for f in own if f.func == "<module>"]
    workflow_frame = modules[0] if modules else None
    imported = [f for f in modules[1:] if f.module]
    packages = tuple(dict.fromkeys(f.module.split(".")[0] for f in imported if f.module))
    return SandboxError(
        blocked=blocked,
        message=message,
        phase="validation" if validation else "runtime",
        workflow=workflow,
        module=packages[0] if packages else None,
        packages=packages,
        workflow_file=workflow_frame.file if workflow_frame and packages else None,
        import_line=(workflow_frame.code or None) if workflow_frame and packages else None,
        location=location,
    )
