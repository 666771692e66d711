"""Run a standalone probe script in the app's interpreter and collect its JSON report.

Harness side only (it lives next to the probe scripts but is not one): the settings probe
and the replay probe share these mechanics and differ only in arguments and how they word
a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from staging.redact import Redactor
from staging.services.prune import owner_tag
from staging.signals import signals_held

if TYPE_CHECKING:
    from staging.forkserver.client import ForkServer

TAIL_LINES = 30
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

ErrorKind = Literal["not_started", "timeout", "crashed", "no_output"]


@dataclass(frozen=True)
class ProbeRun:
    """One probe run. `data` is the report when `error_kind` is None.

    Tails are redacted: `stderr_tail` is stderr alone (what a report keeps on success),
    `output_tail` is stderr then stdout (the evidence when the probe failed).
    """

    data: dict[str, Any] | None
    error_kind: ErrorKind | None = None
    returncode: int | None = None
    stderr_tail: str = ""
    output_tail: str = ""
    message: str = ""  # only for not_started: why the interpreter could not be started
    timeout: float = 0

    def failure(self, doing: str, probe: str) -> tuple[str, str, str]:
        """(type, message, tail) of a failed run, in the words both reports use.

        `doing` names the work ("loading app.Settings"), `probe` the script ("the replay probe").
        """
        if self.error_kind == "not_started":
            return "ProbeNotStarted", self.message, ""
        if self.error_kind == "timeout":
            return (
                "ProbeTimeout",
                f"{doing} did not finish within {self.timeout:g}s",
                self.output_tail,
            )
        message = f"{probe} exited with code {self.returncode} and wrote no report"
        return "ProbeCrashed", message, self.output_tail


def run_probe_script(
    script: Path,
    args: Sequence[str],
    *,
    python: str,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    redactor: Redactor | None = None,
    tmp_prefix: str = "staging-probe-",
    strip_ansi: bool = False,
    cancel: threading.Event | None = None,
    forkserver: ForkServer | None = None,
    needs: Sequence[str] | None = None,
) -> ProbeRun:
    """`python -B script *args --out FILE` with cwd=`cwd` and exactly `env`; never raises.

    Setting `cancel` (a run that stopped before needing the result) kills the probe's
    process group within ~0.1 s and returns a "crashed" run. With a `forkserver` the
    probe is forked from the app's interpreter started ahead (same code, same env), as
    soon as it has imported the libraries in `needs` (None: all it preloads).
    """
    redact: Callable[[str], str] = redactor.text if redactor is not None else str

    def tail(raw: bytes) -> str:
        return redact(_tail(raw, strip_ansi=strip_ansi))

    # The owner's pid and start time in the name: a SIGKILL here leaks the dir, and the
    # next run's sweep (`staging.services.prune`) removes it once this process is gone.
    # Created with SIGINT/SIGTERM held: one landing just after mkdir (inside mkdtemp)
    # would otherwise leave a dir nothing owns (seen in tests/faults).
    tmp: str | None = None
    try:
        with signals_held():
            tmp = tempfile.mkdtemp(prefix=tmp_prefix + owner_tag())
        return _run_in(
            tmp,
            script,
            args,
            python=python,
            cwd=cwd,
            env=env,
            timeout=timeout,
            tail=tail,
            cancel=cancel,
            forkserver=forkserver,
            needs=needs,
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _run_in(
    tmp: str,
    script: Path,
    args: Sequence[str],
    *,
    python: str,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    tail: Callable[[bytes], str],
    cancel: threading.Event | None,
    forkserver: ForkServer | None,
    needs: Sequence[str] | None,
) -> ProbeRun:
    out = Path(tmp) / "report.json"
    argv = [python, "-B", str(script), *args, "--out", str(out)]
    try:
        proc = _start(argv, cwd=cwd, env=env, forkserver=forkserver, needs=needs)
    except OSError as exc:
        return ProbeRun(None, "not_started", message=f"could not start {python}: {exc}")
    deadline = time.monotonic() + timeout
    try:
        while True:
            # communicate() may be retried after a timeout without losing output.
            step = max(0.0, min(0.1, deadline - time.monotonic()))
            try:
                stdout, stderr = proc.communicate(timeout=step)
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    _kill_group(proc)
                    stdout, stderr = proc.communicate()
                    return ProbeRun(None, "crashed", message="cancelled: the run stopped")
                if time.monotonic() >= deadline:
                    _kill_group(proc)
                    stdout, stderr = proc.communicate()
                    return ProbeRun(
                        None, "timeout", output_tail=tail(stderr + stdout), timeout=timeout
                    )
    finally:
        _kill_group(proc)
        proc.wait()
    data = _read_report(out)
    code = proc.returncode
    if data is None:
        kind: ErrorKind = "crashed" if code else "no_output"
        return ProbeRun(None, kind, code, tail(stderr), tail(stderr + stdout))
    return ProbeRun(data, None, code, tail(stderr))


class _Probe(Protocol):
    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    def communicate(
        self, input: bytes | None = None, timeout: float | None = None
    ) -> tuple[bytes, bytes]: ...
    def wait(self, timeout: float | None = None) -> int: ...


def _start(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    forkserver: ForkServer | None,
    needs: Sequence[str] | None,
) -> _Probe:
    if forkserver is not None:
        from staging.forkserver.client import try_fork

        forked = try_fork(forkserver, argv, cwd=cwd, env=env, merge_stderr=False, after=needs)
        if forked is not None:
            return forked
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _read_report(out: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tail(raw: bytes, lines: int = TAIL_LINES, *, strip_ansi: bool = False) -> str:
    text = raw.decode("utf-8", "replace")
    if strip_ansi:
        text = _ANSI.sub("", text)
    return "\n".join(text.splitlines()[-lines:])


def _kill_group(proc: _Probe) -> None:
    # The probe runs in its own session: this also reaps anything the app's import spawned.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


__all__ = ["TAIL_LINES", "ErrorKind", "ProbeRun", "run_probe_script"]
