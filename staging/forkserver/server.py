"""The fork server: the app's interpreter, started ahead, forking the app's commands.

Standalone: runs inside the app's own interpreter and imports nothing from `staging`
(started by `staging.forkserver.client`). Every app command (`python -m everflow.worker`,
`python scripts/run_pipeline.py`, the probes) would otherwise pay for a fresh interpreter
and for importing temporalio and pydantic-settings again (about 1.5 s of CPU each, on
the run's critical path). Here the interpreter starts while the services do, imports
only libraries (never the app's own modules, which may read settings at import), and
then forks one child per command. The child becomes the command: its own session, the
given cwd, stdout/stderr and environment, `sys.argv` and `sys.path[0]` as the command
line would set them, and the module run as `__main__` the way `python -m` runs it.
The request's PYTHONPATH (the workspace's import roots, which the server itself never
had) goes first on the child's `sys.path`, and staging's module-origin hook among its
entries is run in the child, as a cold interpreter would run it at start-up.

Protocol, over a SOCK_SEQPACKET socket (fd given with --control), one JSON object per
packet. Requests: {"op": "spawn", "id", "kind": "module"|"script", "target", "args",
"cwd", "env", "no_bytecode", "after"} with the child's stdout and stderr fds attached;
a request waits until the preloads it names in "after" (null: all of them) are done, so
a child never imports on its own what the server is about to import for everyone.
Events: {"event": "hello", "pid"}, {"event": "spawned", "id", "pid"},
{"event": "exit", "pid", "code"} (negative code: killed by that signal),
{"event": "ready", "loaded", "failed", "threads"}, {"event": "refused", "id", "reason"}
(the harness then starts that command the ordinary way). EOF on the socket: the server exits.

The server never has a thread of its own, so forking is safe at any point; requests
are served between preload imports.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import threading
import time

MAX_PACKET = 1 << 20
HOOK_DIR_NAME = "origins_hook"  # staging.probes' start-up hook: run, never put on sys.path
_MAIN_KEEP = ("__name__", "__doc__", "__builtins__", "__annotations__")


class Server:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.imported: set[str] = set()  # preloads done (or failed: the child will see why)
        self.preloading = True
        self.pending: list[tuple[dict[str, object], list[int]]] = []
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)

    def send(self, event: dict[str, object]) -> None:
        with contextlib.suppress(OSError):  # the harness is gone; the next receive sees EOF
            self.control.send(json.dumps(event).encode())

    def serve(self, timeout: float | None) -> bool:
        """Handle what is pending (waiting up to `timeout`); False once the harness left."""
        while True:
            readable, _, _ = select.select([self.control.fileno(), self.wake_r], [], [], timeout)
            if not readable:
                return True
            if self.wake_r in readable:
                self.reap()
            if self.control.fileno() in readable:
                message, fds, _, _ = socket.recv_fds(self.control, MAX_PACKET, 4)
                if not message:
                    return False
                self.pending.append((json.loads(message), fds))
                self.dispatch()
            timeout = 0

    def dispatch(self) -> None:
        """Fork each pending request whose libraries are imported (all, unless it names some)."""
        index = 0
        while index < len(self.pending):
            request, fds = self.pending[index]
            after = request.get("after")
            ready = not self.preloading or (
                isinstance(after, list) and all(name in self.imported for name in after)
            )
            if ready:
                del self.pending[index]  # before forking: the child closes what stays pending
                self.spawn(request, fds)
            else:
                index += 1

    def reap(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            self.send({"event": "exit", "pid": pid, "code": code})
            cpu = usage.ru_utime + usage.ru_stime
            print(f"{time.time():.3f} {pid} exited with {code} ({cpu:.2f}s CPU)", flush=True)

    def spawn(self, request: dict[str, object], fds: list[int]) -> None:
        threads = thread_count()
        if threads > 1:  # a library started a thread: forking now could deadlock the child
            for fd in fds:
                os.close(fd)
            reason = f"the server runs {threads} threads"
            self.send({"event": "refused", "id": request["id"], "reason": reason})
            return
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # the child's collections skip (and never copy) the preloaded objects
        settled_r, settled_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(settled_r)
            # never returns: the child exits as the command does
            self.become(request, fds, settled=settled_w)
        os.close(settled_w)
        for fd in fds:
            os.close(fd)
        # Report the pid only once it leads its own process group: a stop sent at once
        # (killpg) must reach it, as with Popen(start_new_session=True).
        os.read(settled_r, 1)
        os.close(settled_r)
        self.send({"event": "spawned", "id": request["id"], "pid": pid})
        print(
            f"{time.time():.3f} forked {request['kind']} {request['target']} as {pid}", flush=True
        )

    def become(self, request: dict[str, object], fds: list[int], *, settled: int) -> None:
        """In the child: turn into the requested command, then run it."""
        os.setsid()
        os.write(settled, b"1")
        os.close(settled)
        for _, others in self.pending:  # another command's output pipe is not ours to hold
            for fd in others:
                with contextlib.suppress(OSError):
                    os.close(fd)
        gc.enable()  # as in any new interpreter; the preloaded objects stay frozen
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.control.close()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        stdout, stderr = fds
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        for fd in set(fds):
            os.close(fd)
        cwd = str(request["cwd"])
        os.chdir(cwd)
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
        if request.get("no_bytecode"):
            sys.dont_write_bytecode = True
        apply_python_path(os.environ.get("PYTHONPATH", ""))
        raw_args = request["args"]
        assert isinstance(raw_args, list)
        args = [str(a) for a in raw_args]
        target = str(request["target"])
        main = sys.modules["__main__"]
        for name in list(vars(main)):
            if name not in _MAIN_KEEP:
                delattr(main, name)
        main.__doc__ = None
        importlib.invalidate_caches()
        if request["kind"] == "module":
            run_module(target, args, cwd)
        else:
            run_script(target, args)
        raise SystemExit(0)


def thread_count() -> int:
    """Native threads too (a library's runtime), where /proc shows them."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def apply_python_path(value: str) -> None:
    """What PYTHONPATH does at an interpreter's start, for a child of one started without it.

    Its entries go first (the command's own sys.path[0] goes before them next); staging's
    start-up hook among them is run instead, as a fresh interpreter would run it.
    """
    entries = [os.path.abspath(p) for p in value.split(os.pathsep) if p]
    for entry in entries:
        hook = os.path.join(entry, "sitecustomize.py")
        if os.path.basename(entry) == HOOK_DIR_NAME and os.path.isfile(hook):
            with open(hook, "rb") as source:
                code = compile(source.read(), hook, "exec")
            exec(code, {"__name__": "_staging_origins", "__file__": hook})
    first = [e for e in entries if os.path.basename(e) != HOOK_DIR_NAME]
    sys.path[:] = first + [p for p in sys.path if p not in first]


def run_module(name: str, args: list[str], cwd: str) -> None:
    """As `python -m name args`: cwd first on sys.path, argv[0] the module's file."""
    import runpy

    sys.argv = ["-m", *args]
    sys.path.insert(0, cwd)
    runpy._run_module_as_main(name)  # type: ignore[attr-defined]  # what `-m` itself calls


def run_script(path: str, args: list[str]) -> None:
    """As `python path args`: the script's directory first on sys.path, run as __main__."""
    from importlib.machinery import SourceFileLoader

    absolute = os.path.abspath(path)
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.realpath(absolute)))
    main = sys.modules["__main__"]
    main.__file__ = absolute
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__loader__ = SourceFileLoader("__main__", absolute)
    main.__spec__ = None
    main.__package__ = None
    with open(absolute, "rb") as source:
        code = compile(source.read(), absolute, "exec")
    exec(code, vars(main))


def main(argv: list[str]) -> None:
    control_fd = int(argv[argv.index("--control") + 1])
    preload = [m for m in argv[argv.index("--preload") + 1].split(",") if m]
    if sys.path and sys.path[0] == "":
        sys.path.pop(0)  # never import from the server's cwd; a child inserts its own first
    gc.disable()  # importing is faster without collections; nothing here makes cycles to free
    control = socket.socket(fileno=control_fd)
    server = Server(control)
    server.send({"event": "hello", "pid": os.getpid()})
    loaded: list[str] = []
    failed: list[str] = []
    began = time.monotonic()
    for module in preload:
        if not server.serve(0):
            os._exit(0)
        try:
            importlib.import_module(module)
            loaded.append(module)
            server.imported.add(module)
            took = time.monotonic() - began
            print(f"{time.time():.3f} preloaded {module} ({took:.2f}s)", flush=True)
        except Exception as exc:  # the app's own import will fail the same way, in context
            failed.append(f"{module}: {type(exc).__name__}: {exc}")
            server.imported.add(module)
            print(f"could not preload {failed[-1]}", flush=True)
        server.dispatch()
    server.preloading = False
    server.dispatch()
    server.send(
        {
            "event": "ready",
            "loaded": loaded,
            "failed": failed,
            "threads": thread_count(),
        }
    )
    while server.serve(None):
        pass
    os._exit(0)


if __name__ == "__main__" or __name__ == "_staging_forkserver":
    main(sys.argv)
