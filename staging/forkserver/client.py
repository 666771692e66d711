"""Harness side of the fork server: start it ahead, fork the app's commands from it.

`ForkServer.start` launches `server.py` in the app's interpreter with the hermetic base
environment (what every app process gets before delivery adds the app's variables) and
a list of libraries to import. `accepts` says whether a command can be forked there
exactly as the command line would run it; `spawn` returns a `ForkedProcess`, which
looks like a `subprocess.Popen` to the code that waits for it, reads its output and
signals its process group. Anything it does not accept is started the ordinary way;
a server that died or refused is never an error, only a slower run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

SERVER = Path(__file__).resolve().parent / "server.py"
MAX_PACKET = 1 << 20

# Imported before any command is forked: libraries every app this tool runs imports,
# none of which reads configuration at import time. Apps add theirs with `preload`.
DEFAULT_PRELOAD = ("pydantic_settings", "temporalio.client", "temporalio.worker")

SPAWN_TIMEOUT = 60.0  # a reply waits for at most one preload import to finish
UNKNOWN_EXIT = 255  # the server died before it could report a child's exit


class ForkServerUnavailable(Exception):
    """The server cannot fork this command now; start it the ordinary way."""


@dataclass(frozen=True)
class ForkTarget:
    kind: Literal["module", "script"]
    target: str
    args: tuple[str, ...]
    no_bytecode: bool = False


def fork_target(argv: Sequence[str], python: str, cwd: Path) -> ForkTarget | None:
    """`python [-B] -m mod args` or `python [-B] script.py args`; None for anything else."""
    if len(argv) < 2 or argv[0] != python:
        return None
    rest = list(argv[1:])
    no_bytecode = rest[0] == "-B"
    if no_bytecode:
        rest = rest[1:]
    if not rest:
        return None
    if rest[0] == "-m":
        if len(rest) < 2 or not rest[1] or rest[1].startswith("-"):
            return None
        return ForkTarget("module", rest[1], tuple(rest[2:]), no_bytecode)
    if rest[0].startswith("-") or not (cwd / rest[0]).is_file():
        return None  # interpreter options, or a missing script: let Python say so itself
    return ForkTarget("script", rest[0], tuple(rest[1:]), no_bytecode)


def _python_vars(env: Mapping[str, str]) -> dict[str, str]:
    # PYTHONPATH is not among them: a forked child applies it to its sys.path itself.
    return {k: v for k, v in env.items() if k.startswith("PYTHON") and k != "PYTHONPATH"}


class ForkServer:
    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        control: socket.socket,
        python: str,
        env: Mapping[str, str],
        *,
        preload: Sequence[str] = (),
        cwd: Path = Path("."),
    ) -> None:
        self.proc = proc
        self.python = python
        self.preload = list(preload)
        self.cwd = cwd
        self._env = dict(env)
        self._control = control
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._spawned: dict[int, int | str] = {}  # request id -> pid, or why it was refused
        self._exits: dict[int, int] = {}
        self._dead = False
        self.loaded: list[str] = []
        self.failed: list[str] = []
        self._reader = threading.Thread(target=self._read, name="forkserver", daemon=True)
        self._reader.start()

    @classmethod
    def start(
        cls,
        python: str,
        *,
        env: Mapping[str, str],
        cwd: Path,
        preload: Sequence[str],
        log_path: Path,
    ) -> ForkServer:
        """Start the server (it imports `preload` in the background); raises OSError."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        path = str(SERVER)
        # Not `python server.py`: that would make the server's globals the `__main__`
        # every forked command inherits. `-c` leaves `__main__` as bare as a new process's.
        bootstrap = (
            f"exec(compile(open({path!r}, 'rb').read(), {path!r}, 'exec'), "
            f"{{'__name__': '_staging_forkserver', '__file__': {path!r}}})"
        )
        command = [python, "-c", bootstrap, "--control", str(theirs.fileno())]
        command += ["--preload", ",".join(preload)]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with log_path.open("ab") as log:
                proc = subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=[theirs.fileno()],
                    start_new_session=True,
                )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        return cls(proc, ours, python, env, preload=preload, cwd=cwd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def identity(self) -> tuple[str, list[str]]:
        """What makes two servers interchangeable: the interpreter and what it preloads."""
        return (self.python, self.preload)

    def alive(self) -> bool:
        with self._cond:
            return not self._dead

    def accepts(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path
    ) -> ForkTarget | None:
        """The command as a fork target, when forking it here is the same as running it."""
        if not self.alive() or _python_vars(env) != _python_vars(self._env):
            return None  # PYTHON* variables act at interpreter start-up
        return fork_target(argv, self.python, cwd)

    def spawn(
        self,
        target: ForkTarget,
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout: int,
        stderr: int,
        after: Sequence[str] | None = None,
    ) -> int:
        """Fork `target` with these fds as stdout/stderr; its pid. Raises ForkServerUnavailable.

        The fork waits for the preloads named in `after` (None: every preload).
        """
        ident = next(self._ids)
        request = {
            "op": "spawn",
            "id": ident,
            "kind": target.kind,
            "target": target.target,
            "args": list(target.args),
            "cwd": str(cwd),
            "env": dict(env),
            "no_bytecode": target.no_bytecode,
            "after": None if after is None else list(after),
        }
        try:
            socket.send_fds(self._control, [json.dumps(request).encode()], [stdout, stderr])
        except OSError as exc:
            raise ForkServerUnavailable(f"the fork server is gone: {exc}") from exc
        with self._cond:
            answered = self._cond.wait_for(
                lambda: ident in self._spawned or self._dead, timeout=SPAWN_TIMEOUT
            )
            outcome = self._spawned.pop(ident, None)
        if isinstance(outcome, int):
            return outcome
        if not answered:
            self.close()  # the queued request must never run after its cold start
        raise ForkServerUnavailable(
            outcome if isinstance(outcome, str) else "the fork server did not answer"
        )

    def exit_code(self, pid: int) -> int | None:
        with self._cond:
            if pid in self._exits:
                return self._exits[pid]
            if not self._dead:
                return None
        # Its parent is gone: the child was re-parented and its status is lost.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return UNKNOWN_EXIT
        except PermissionError:
            pass
        return None

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: pid in self._exits or self._dead,
                    timeout=None if deadline is None else max(0.0, deadline - time.monotonic()),
                )
            code = self.exit_code(pid)
            if code is not None:
                return code
            if deadline is not None and time.monotonic() >= deadline:
                return None
            if not self.alive():
                time.sleep(0.05)  # orphaned child: poll until it is gone

    def close(self) -> None:
        """Stop the server (not the commands it forked: their owners stop those)."""
        with contextlib.suppress(OSError):
            self._control.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        self._control.close()

    def _read(self) -> None:
        while True:
            try:
                packet = self._control.recv(MAX_PACKET)
            except OSError:
                packet = b""
            if not packet:
                with self._cond:
                    self._dead = True
                    self._cond.notify_all()
                return
            event: dict[str, Any] = json.loads(packet)
            with self._cond:
                kind = event.get("event")
                if kind == "spawned":
                    self._spawned[int(event["id"])] = int(event["pid"])
                elif kind == "refused":
                    self._spawned[int(event["id"])] = str(event["reason"])
                elif kind == "exit":
                    self._exits[int(event["pid"])] = int(event["code"])
                elif kind == "ready":
                    self.loaded = list(event["loaded"])
                    self.failed = list(event["failed"])
                self._cond.notify_all()


class ForkedProcess:
    """A forked command, with the part of `subprocess.Popen`'s interface staging uses."""

    def __init__(
        self,
        server: ForkServer,
        pid: int,
        args: Sequence[str],
        stdout: IO[bytes] | None,
        stderr: IO[bytes] | None,
    ) -> None:
        self.server = server
        self.pid = pid
        self.args = list(args)
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._collected: dict[str, bytearray] = {}
        self._collectors: list[threading.Thread] = []

    @classmethod
    def start(
        cls,
        server: ForkServer,
        target: ForkTarget,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        merge_stderr: bool,
        after: Sequence[str] | None = None,
    ) -> ForkedProcess:
        """Pipes like `stdout=PIPE, stderr=STDOUT` (merged) or `stderr=PIPE`."""
        out_r, out_w = os.pipe()
        err_r, err_w = (out_r, out_w) if merge_stderr else os.pipe()
        try:
            pid = server.spawn(target, cwd=cwd, env=env, stdout=out_w, stderr=err_w, after=after)
        except BaseException:
            for fd in {out_r, err_r}:
                os.close(fd)
            raise
        finally:
            for fd in {out_w, err_w}:  # the child has its own copies now
                os.close(fd)
        stdout = os.fdopen(out_r, "rb")
        stderr = None if merge_stderr else os.fdopen(err_r, "rb")
        return cls(server, pid, argv, stdout, stderr)

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.server.wait_exit(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def communicate(
        self, input: bytes | None = None, timeout: float | None = None
    ) -> tuple[bytes, bytes]:
        """Both outputs once the process exited and closed them; retry after TimeoutExpired.

        `input` is accepted for Popen's signature only: a forked command's stdin is /dev/null.
        """
        if input:
            raise ValueError("a forked command reads /dev/null; it takes no input")
        if not self._collectors:
            for name, pipe in (("stdout", self.stdout), ("stderr", self.stderr)):
                if pipe is not None:
                    self._collected[name] = bytearray()
                    thread = threading.Thread(
                        target=_drain, args=(pipe, self._collected[name]), daemon=True
                    )
                    thread.start()
                    self._collectors.append(thread)
        deadline = None if timeout is None else time.monotonic() + timeout
        self.wait(timeout)
        for thread in self._collectors:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
            if thread.is_alive():  # a grandchild still holds the pipe open
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return bytes(self._collected.get("stdout", b"")), bytes(self._collected.get("stderr", b""))


def _drain(pipe: IO[bytes], into: bytearray) -> None:
    with contextlib.suppress(OSError, ValueError):
        for chunk in iter(lambda: pipe.read1(65536), b""):  # type: ignore[attr-defined]
            into.extend(chunk)


def try_fork(
    server: ForkServer,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    merge_stderr: bool,
    after: Sequence[str] | None = None,
) -> ForkedProcess | None:
    """`argv` forked from `server`, or None: then it starts the ordinary way."""
    target = server.accepts(argv, env=env, cwd=cwd)
    if target is None:
        return None
    try:
        return ForkedProcess.start(
            server, target, argv, cwd=cwd, env=env, merge_stderr=merge_stderr, after=after
        )
    except ForkServerUnavailable:
        return None
