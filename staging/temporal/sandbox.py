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

from staging.evidence import PACKAGES_DIR, Frame, frame_kind
from staging.result import Diagnosis, FailureClass

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MARKERS = ("RestrictedWorkflowAccessError", "Failed validating workflow", "from inside a workflow")
_BLOCKED = re.compile(r"Cannot access (?P<name>[\w.]+) from inside a workflow[^\"\n]*")
_EXC_LINE = re.compile(r"RestrictedWorkflowAccessError: (?P<msg>[^\n]*)")
_VALIDATION = re.compile(r"Failed validating workflow (?P<wf>[\w.-]+)")
_ACTIVATION = re.compile(r"Failed activation on workflow (?P<wf>[\w.-]+)")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)$')
_STDLIB_DIR = re.compile(r"/lib/python3\.\d+/(?P<rel>.+)$")

# Workflow-safe replacements for what workflow code most often reaches for.
_SAFE = (
    (re.compile(r"^datetime\.(datetime|date)\.(now|utcnow|today)"), "workflow.now()"),
    (re.compile(r"^time\.(time|monotonic|perf_counter)"), "workflow.now() / workflow.time()"),
    (re.compile(r"^time\.sleep"), "await workflow.sleep()"),
    (re.compile(r"^random\."), "workflow.random()"),
    (re.compile(r"^uuid\.uuid[14]"), "workflow.uuid4()"),
)


Kind = Literal["import", "call", "direct"]


def safe_replacement(blocked: str) -> str | None:
    """The workflow-safe API for a blocked call (`workflow.uuid4()` for `uuid.uuid4`)."""
    return next((s for p, s in _SAFE if p.search(blocked)), None)


def sandbox_hint(blocked: str) -> str:
    """The fix for a blocked call made by workflow code itself (at import or at run time)."""
    safe = safe_replacement(blocked)
    fix = (
        f"use {safe} instead of {blocked}"
        if safe
        else f"move the call to {blocked} into an activity"
    )
    return f"workflow code must be deterministic: {fix}"


_NOT_UNSANDBOXED = (
    "Do not switch the worker to UnsandboxedWorkflowRunner() or pass the workflow's own "
    "module through: that turns off the determinism checks of the workflow itself"
)


@dataclass(frozen=True)
class SandboxError:
    blocked: str  # what the sandbox refused, e.g. "random.getrandbits"
    message: str  # the RestrictedWorkflowAccessError's message
    phase: Literal["validation", "runtime"]
    workflow: str | None = None  # the workflow's registered name (its class, usually)
    module: str | None = None  # the third-party import to pass through, e.g. "structlog"
    packages: tuple[str, ...] = ()  # installed packages on the import chain, in order
    workflow_file: str | None = None  # the innermost app file on the chain
    import_line: str | None = None  # its line that started it (an import, or a call)
    location: str | None = None  # file:line of the blocked access
    kind: Kind = "direct"  # import: a library import; call: a module-level call
    app_line: int | None = None  # line number of `import_line` in `workflow_file`
    importer: str | None = None  # for a call: file:line `code` that imported that app file

    @property
    def app_where(self) -> str:
        if not self.workflow_file:
            return ""
        line = f":{self.app_line}" if self.app_line else ""
        code = f" `{self.import_line}`" if self.import_line else ""
        return f"{self.workflow_file}{line}{code}"

    def cause(self) -> str:
        who = f"workflow {self.workflow}" if self.workflow else "a workflow"
        when = "while validating" if self.phase == "validation" else "while running"
        text = f"Temporal's workflow sandbox blocked {self.blocked} {when} {who}"
        if self.kind == "import" and self.module:
            text += f": it is reached by importing {self.module!r} at {self.app_where}"
            if len(self.packages) > 1:
                text += f" ({' -> '.join(self.packages)})"
        elif self.kind == "call":
            text += (
                f": {self.app_where} calls it at import time (a module-level call, not an import)"
            )
            if self.importer:
                text += f", and that module is imported by {self.importer}"
        elif self.location:
            text += f" (at {self.location})"
        return text

    def hint(self) -> str:
        if self.kind == "import" and self.module:
            where = f" ({self.app_where})" if self.app_where else ""
            return (
                f"pass {self.module!r} through the sandbox: build the worker with "
                f"workflow_runner=SandboxedWorkflowRunner(restrictions=SandboxRestrictions"
                f".default.with_passthrough_modules({self.module!r})); or, if only "
                f"activities use it, move the import{where} into an activity module; or wrap "
                f"that import in `with workflow.unsafe.imports_passed_through():`. "
                f"{_NOT_UNSANDBOXED}"
            )
        if self.kind == "call":
            importer = f" ({self.importer})" if self.importer else ""
            return (
                f"do not run `{self.import_line or 'that code'}` at import time in a module "
                f"workflow code imports: create it lazily (in a function the worker or an "
                f"activity calls); or, if the workflow needs that module only for its "
                f"activities, wrap the import of it{importer} in "
                f"`with workflow.unsafe.imports_passed_through():`. {_NOT_UNSANDBOXED}"
            )
        return f"{sandbox_hint(self.blocked)}. {_NOT_UNSANDBOXED}"

    def diagnosis(self, redact: Callable[[str], str] = lambda s: s, root: str = "") -> Diagnosis:
        def short(text: str) -> str:
            return text.replace(root.rstrip("/") + "/", "") if root else text

        # The message's first sentence; the rest is temporalio's generic advice.
        first = self.message.split(" from inside a workflow.", 1)[0]
        if first != self.message:
            first += " from inside a workflow"
        evidence = [f"RestrictedWorkflowAccessError: {first}"]
        if self.app_where:
            evidence.append(f"at {self.app_where}")
        if self.importer:
            evidence.append(f"imported by {self.importer}")
        if self.location:
            evidence.append(f"blocked at {self.location}")
        return Diagnosis(
            failure_class=FailureClass.WORKER_SANDBOX,
            cause=redact(short(self.cause())),
            hint=redact(short(self.hint())),
            evidence=tuple(redact(short(e)) for e in evidence),
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


def _library_module(frame: Frame) -> str | None:
    """Dotted module of an installed or stdlib frame; None for the app's own files."""
    if frame_kind(frame.file) == "app":
        return None
    if frame.module:
        return frame.module
    match = _STDLIB_DIR.search(frame.file.replace("\\", "/"))
    return match["rel"].removesuffix(".py").replace("/", ".") if match else frame.file


@dataclass(frozen=True)
class _Chain:
    kind: Kind
    app: Frame | None  # the innermost app frame
    importer: Frame | None  # the app frame that imported the app module making a call
    packages: tuple[str, ...]


def _chain(own: list[Frame]) -> _Chain:
    """Walk the import chain to the innermost app frame and what follows it."""
    app_idx = [i for i, f in enumerate(own) if _library_module(f) is None]
    if not app_idx:
        packages = tuple(dict.fromkeys(m.split(".")[0] for f in own if (m := f.module)))
        return _Chain("import" if packages else "direct", None, None, packages)
    last = app_idx[-1]
    app = own[last]
    after = own[last + 1 :]
    # A workflow module installed as a package must never be offered as a passthrough.
    first_module = next((f.module for f in own if f.func == "<module>"), None)
    own_package = first_module.split(".")[0] if first_module else None
    packages = tuple(
        dict.fromkeys(
            m.split(".")[0]
            for f in after
            if f.func == "<module>" and (m := f.module) and m.split(".")[0] != own_package
        )
    )
    if after and after[0].func == "<module>" and packages:
        return _Chain("import", app, None, packages)
    if not after:
        return _Chain("direct", app, None, ())
    # The app line runs something at import time; name the import that brought it in.
    modules = [own[i] for i in app_idx if own[i].func == "<module>"]
    outer = [f for f in modules if f.file != app.file]
    return _Chain("call", app, outer[-1] if outer else None, ())


def _short_where(frame: Frame) -> str:
    """`rich/style.py:22` for an installed package's file: the venv's path says nothing."""
    match = PACKAGES_DIR.search(frame.file)
    return f"{match['rel']}:{frame.line}" if match else frame.where()


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
    location = _short_where(own[-1]) if own else None
    chain = _chain(own)
    app = chain.app if chain.kind != "direct" else None
    importer = chain.importer
    return SandboxError(
        blocked=blocked,
        message=message,
        phase="validation" if validation else "runtime",
        workflow=workflow,
        module=chain.packages[0] if chain.kind == "import" and chain.packages else None,
        packages=chain.packages,
        workflow_file=app.file if app else None,
        import_line=(app.code or None) if app else None,
        location=location,
        kind=chain.kind,
        app_line=app.line if app else None,
        importer=f"{importer.where()} `{importer.code}`" if importer else None,
    )
