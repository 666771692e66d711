"""Evidence that leads with the deciding line: the last exception of a process's output.

A failed command's output ends in a traceback whose useful part is at the bottom (the
exception line) and in the middle (the app's own frames), while the top is noise: the
fork server, runpy, importlib's bootstrap, dozens of library frames. Cutting the output
to its last N lines loses the exception line as often as it keeps it. So the evidence is
rebuilt in a fixed order:

1. the innermost exception's type and message (for a chain, the root cause; the
   exception it was re-raised as follows it);
2. the app's own frames, innermost first, as `file:line in func: code`;
3. the rest folded into one line (how many library frames, how many earlier lines).

Staging's own frames (fork server, probes, runpy, importlib bootstrap) are never shown.
Pure text processing: callers redact before or after, as they already do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = {
    "The above exception was the direct cause of the following exception:": "cause",
    "During handling of the above exception, another exception occurred:": "context",
}
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_EXCEPTION = re.compile(
    r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Group)?)"
    r"(?::\s?(?P<msg>.*))?$"
)
_CARETS = re.compile(r"^\s*[~^]+\s*$")
# A line that starts another log record ends an exception's message.
_LOG_RECORD = re.compile(
    r"^(?:\d{4}-\d\d-\d\d|\[?(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b|\{\")"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Output without a traceback: the last line that says something failed decides.
_FAILURE_WORDS = re.compile(
    r"error|failed|fatal|denied|refused|not found|no such|cannot|can't|invalid|traceback",
    re.IGNORECASE,
)
_MAX_MESSAGE_LINES = 6
_MAX_APP_FRAMES = 6

FrameKind = Literal["app", "library", "staging"]


# An installed package's file: its dotted module name follows site-/dist-packages.
PACKAGES_DIR = re.compile(r"[/\\](?:site|dist)-packages[/\\](?P<rel>.+)$")


@dataclass(frozen=True)
class Frame:
    """One `File "...", line N, in func` of a traceback, with its code line."""

    file: str
    line: int
    func: str
    code: str = ""

    @property
    def kind(self) -> FrameKind:
        return frame_kind(self.file)

    @property
    def module(self) -> str | None:
        """Dotted name for an installed package's file; None for the app's own files."""
        match = PACKAGES_DIR.search(self.file)
        if not match:
            return None
        rel = match["rel"].replace("\\", "/").removesuffix(".py").removesuffix("/__init__")
        return rel.replace("/", ".")

    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def render(self, root: str = "") -> str:
        path = self.file
        if root and path.startswith(root.rstrip("/") + "/"):
            path = path[len(root.rstrip("/")) + 1 :]
        text = f"{path}:{self.line} in {self.func}"
        return f"{text}: {self.code}" if self.code else text


@dataclass(frozen=True)
class ExceptionBlock:
    """One `Traceback ...` block: its frames and the exception line it ends with."""

    type: str
    message: str  # first line of the message
    more: tuple[str, ...] = ()  # continuation lines of a multi-line message
    frames: tuple[Frame, ...] = ()
    link: str = ""  # "cause" / "context": how the *next* block relates to this one

    def headline(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True)
class Traceback:
    """A chain of blocks as Python prints it: root cause first, outermost last."""

    blocks: tuple[ExceptionBlock, ...]
    start: int  # index of the first line of the chain in the output

    @property
    def root(self) -> ExceptionBlock:
        return self.blocks[0]

    @property
    def outer(self) -> ExceptionBlock:
        return self.blocks[-1]

    def app_frames(self) -> list[Frame]:
        """The app's frames, innermost first: the root's, then the re-raisers' frames."""
        seen: set[tuple[str, int]] = set()
        frames: list[Frame] = []
        for block in self.blocks:
            for frame in reversed(block.frames):
                if frame.kind == "app" and (frame.file, frame.line) not in seen:
                    seen.add((frame.file, frame.line))
                    frames.append(frame)
        return frames

    def library_frames(self) -> int:
        return sum(1 for b in self.blocks for f in b.frames if f.kind == "library")


def frame_kind(file: str) -> FrameKind:
    """`staging` for frames a user never needs, `library` for installed/stdlib code."""
    path = file.replace("\\", "/")
    if (
        "/staging/forkserver/" in path
        or "/staging/probes/" in path
        or path.endswith("/runpy.py")
        or path.startswith("<frozen runpy")
        or path.startswith("<frozen importlib._bootstrap")
    ):
        return "staging"
    if (
        "/site-packages/" in path
        or "/dist-packages/" in path
        or path.startswith("<")
        or re.search(r"/lib/python3\.\d+/", path)
    ):
        return "library"
    return "app"


def normalise(text: str) -> str:
    """Strip colours; unescape a traceback embedded in a log record (`\\n` inside JSON)."""
    text = _ANSI.sub("", text)
    if _TRACEBACK not in text and "Traceback (most recent call last):\\n" in text:
        text = text.replace("\\n", "\n").replace('\\"', '"')
    return text


def _parse_block(lines: list[str], start: int) -> tuple[ExceptionBlock | None, int]:
    """Parse the block whose `Traceback` header is `lines[start]`; return it and its end."""
    frames: list[Frame] = []
    i = start + 1
    while i < len(lines):
        match = _FRAME.match(lines[i])
        if match:
            code = ""
            if i + 1 < len(lines) and lines[i + 1].startswith("    "):
                nxt = lines[i + 1]
                if not _FRAME.match(nxt) and not _CARETS.match(nxt):
                    code = nxt.strip()
                    i += 1
            frames.append(Frame(match["file"], int(match["line"]), match["func"] or "?", code))
            i += 1
            continue
        if lines[i].startswith(" ") or _CARETS.match(lines[i]) or not lines[i].strip():
            i += 1  # carets, a SyntaxError's code line, a blank line before the exception
            continue
        break
    if i >= len(lines):
        return None, i
    head = _EXCEPTION.match(lines[i].strip())
    if head is None:
        return None, i
    more: list[str] = []
    j = i + 1
    while j < len(lines) and len(more) < _MAX_MESSAGE_LINES:
        line = lines[j]
        if not line.strip() or line.startswith(_TRACEBACK) or _LOG_RECORD.match(line):
            break
        more.append(line.rstrip())
        j += 1
    block = ExceptionBlock(head["type"], (head["msg"] or "").strip(), tuple(more), tuple(frames))
    return block, j


def last_traceback(text: str) -> Traceback | None:
    """The last printed exception chain in `text`, or None when there is none."""
    lines = normalise(text).splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    if not starts:
        return None
    # Walk back from the last block over the chain markers that link it to earlier ones.
    first = len(starts) - 1
    while first > 0:
        between = [ln.strip() for ln in lines[starts[first - 1] : starts[first]] if ln.strip()]
        if not between or between[-1] not in _CHAINED:
            break
        first -= 1
    blocks: list[ExceptionBlock] = []
    for k in range(first, len(starts)):
        block, end = _parse_block(lines, starts[k])
        if block is None:
            continue
        marker = (
            next(
                (
                    _CHAINED[ln.strip()]
                    for ln in lines[end : starts[k + 1]]
                    if ln.strip() in _CHAINED
                ),
                "",
            )
            if k + 1 < len(starts)
            else ""
        )
        blocks.append(
            ExceptionBlock(block.type, block.message, block.more, block.frames, link=marker)
        )
    if not blocks:
        return None
    return Traceback(tuple(blocks), starts[first])


def deciding_line(text: str) -> str | None:
    """The one line that says what went wrong: the root exception, else the last error line."""
    tb = last_traceback(text)
    if tb is not None:
        return tb.root.headline()
    for line in reversed(normalise(text).splitlines()):
        if _FAILURE_WORDS.search(line) and frame_kind_of_line(line) != "staging":
            return line.strip()
    return None


def frame_kind_of_line(line: str) -> FrameKind | None:
    match = _FRAME.match(line)
    return frame_kind(match["file"]) if match else None


def _chain_lines(tb: Traceback) -> list[str]:
    lines = [tb.root.headline(), *(f"  {m.strip()}" for m in tb.root.more)]
    previous = tb.root
    for block in tb.blocks[1:]:
        how = "raised as" if previous.link == "cause" else "then, while handling it"
        if block.headline() != previous.headline():
            lines.append(f"{how}: {block.headline()}")
        previous = block
    return lines


def _tail_evidence(text: str, lines: list[str], tail: int, log: str) -> tuple[str, ...]:
    """Output without a traceback: its failing line first, then its last lines."""
    kept = [ln for ln in lines if ln.strip() and frame_kind_of_line(ln) != "staging"]
    shown = kept[-tail:]
    decider = deciding_line(text)
    out = [decider] if decider else []
    out += [ln for ln in shown if ln.strip() != decider]
    if len(kept) > len(shown):
        where = f" (full output: {log})" if log else ""
        out.append(f"… {len(kept) - len(shown)} earlier output lines folded{where}")
    return tuple(out)


def build_evidence(text: str, *, root: str = "", tail: int = 15, log: str = "") -> tuple[str, ...]:
    """Evidence lines for a process's output, deciding line first (see the module doc).

    `root` is stripped from app paths (the workspace); `tail` is how many output lines
    to keep when there is no traceback; `log` names where the full output is.
    """
    tb = last_traceback(text)
    lines = normalise(text).splitlines()
    if tb is None:
        return _tail_evidence(text, lines, tail, log)
    evidence = _chain_lines(tb)
    app = tb.app_frames()
    evidence += [f"at {f.render(root)}" for f in app[:_MAX_APP_FRAMES]]
    folded: list[str] = []
    if len(app) > _MAX_APP_FRAMES:
        folded.append(f"{len(app) - _MAX_APP_FRAMES} more app frames")
    library = tb.library_frames()
    if library:
        folded.append(f"{library} library frame{'s' if library != 1 else ''}")
    earlier = sum(1 for ln in lines[: tb.start] if ln.strip())
    if earlier:
        folded.append(f"{earlier} earlier output line{'s' if earlier != 1 else ''}")
    if folded:
        where = f" (full output: {log})" if log else ""
        evidence.append(f"… folded: {', '.join(folded)}{where}")
    return tuple(evidence)


def headline_for_cause(text: str, limit: int = 240) -> str:
    """`: Type: message` to append to a cause line, or "" when the output has none."""
    line = deciding_line(text)
    if not line:
        return ""
    return ": " + (line if len(line) <= limit else line[: limit - 1] + "…")


def frames_in(text: str) -> list[Frame]:
    """Every frame of a bare stack trace (a Temporal failure's `stack_trace`), in order."""
    lines = normalise(text).splitlines()
    frames: list[Frame] = []
    for i, line in enumerate(lines):
        match = _FRAME.match(line)
        if not match:
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        code = "" if _FRAME.match(nxt) or _CARETS.match(nxt) or not nxt.strip() else nxt.strip()
        frames.append(Frame(match["file"], int(match["line"]), match["func"] or "?", code))
    return frames
