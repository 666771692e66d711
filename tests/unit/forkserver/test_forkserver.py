"""The fork server: app commands forked from an interpreter started ahead.

Each test starts a real server (`ForkServer.start`) in this interpreter, preloading only
cheap stdlib modules (or helper modules written into `tmp_path`), and forks small helper
modules/scripts that report what they observe as JSON. Slow preloads are made
deterministic with helper modules that block until a file appears (30 s cap), and the
moment a request is on the socket is observed by counting `socket.send_fds` calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from staging.forkserver import (
    ForkedProcess,
    ForkServer,
    ForkServerUnavailable,
    ForkTarget,
    fork_target,
)
from staging.probes.runner import run_probe_script
from staging.process import ManagedProcess
from staging.redact import Redactor
from staging.workspace.hermetic import hermetic_env

PY = sys.executable
CAP = 30.0  # generous cap for anything that waits: never reached unless something is broken

# Dumps what the command observes; NAMES is taken before the module binds anything itself.
OBSERVER = """\
NAMES = sorted(globals())
import json
import os
import sys

json.dump(
    {
        "names": NAMES,
        "name": __name__,
        "file": __file__,
        "argv": sys.argv,
        "path0": sys.path[0],
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "own_session": os.getsid(0) == os.getpid(),
        "own_group": os.getpgid(0) == os.getpid(),
        "preloaded": "colorsys" in sys.modules,
        "stdin": sys.stdin.read(),
    },
    sys.stdout,
)
"""

# Blocks (at import, i.e. inside the server's preload) until the file named FILE exists.
WAIT_FOR_FILE = """\
import os
import time

here = os.path.dirname(os.path.abspath(__file__))
{before}
deadline = time.monotonic() + {cap}
while not os.path.exists(os.path.join(here, {file!r})) and time.monotonic() < deadline:
    time.sleep(0.01)
"""

# Reports whether the marker file (argv[1]) exists when it starts.
SEES_MARKER = """\
import json
import os
import sys

print(json.dumps({"marker": os.path.exists(sys.argv[1])}), flush=True)
"""

# Prints "ready" then stays alive until the file argv[1] appears.
WAIT_FOR_RELEASE = """\
import os
import sys
import time

print("ready", flush=True)
deadline = time.monotonic() + 30
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.01)
"""

PROBE = """\
import json
import os
import sys

cut = sys.argv.index("--out")
report = {
    "ok": True,
    "argv": sys.argv[1:cut],
    "argv0": sys.argv[0],
    "file": __file__,
    "path0": sys.path[0],
    "cwd": os.getcwd(),
    "name": __name__,
    "env": dict(os.environ),
}
with open(sys.argv[cut + 1], "w") as out:
    json.dump(report, out)
with open("modes.txt", "a") as modes:
    modes.write("forked\\n" if "colorsys" in sys.modules else "cold\\n")
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def read_line(pipe: IO[bytes] | None) -> bytes:
    """One line from a child's pipe; fails instead of hanging when none comes."""
    assert pipe is not None
    readable, _, _ = select.select([pipe], [], [], CAP)
    assert readable, "the child printed nothing"
    return pipe.readline()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + CAP
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def kill(child: Any) -> None:
    if isinstance(child, ManagedProcess):
        child.stop(grace=0)
        return
    if child.poll() is None:  # never signal a pid that may have been reused
        for send in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                send(child.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=CAP)
    for pipe in (child.stdout, child.stderr):
        if pipe is not None:
            pipe.close()


class SendCounter:
    """Wraps `socket.send_fds`: tells when a spawn request is on the server's socket."""

    def __init__(self, real: Callable[..., int]) -> None:
        self.real = real
        self.count = 0
        self.cond = threading.Condition()

    def __call__(self, *args: Any, **kwargs: Any) -> int:
        sent = self.real(*args, **kwargs)
        with self.cond:
            self.count += 1
            self.cond.notify_all()
        return sent

    def wait_for(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.count >= count, timeout=CAP)


class InThread:
    """Runs a call that blocks (a spawn waiting for its preloads) on a thread."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except BaseException as exc:
            self.error = exc

    def join(self) -> Any:
        self.thread.join(CAP)
        assert not self.thread.is_alive(), "the call did not return"
        if self.error is not None:
            raise self.error
        return self.result


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """The commands' cwd, holding the observer module and script."""
    write(tmp_path / "app" / "observe.py", OBSERVER)
    write(tmp_path / "app" / "scripts" / "observe_script.py", OBSERVER)
    return tmp_path / "app"


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    """A directory on the server's PYTHONPATH, for modules the server preloads."""
    (tmp_path / "lib").mkdir()
    return tmp_path / "lib"


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., ForkServer]]:
    servers: list[ForkServer] = []

    def make(preload: Sequence[str], env: Mapping[str, str]) -> ForkServer:
        server = ForkServer.start(
            PY,
            env=env,
            cwd=tmp_path,
            preload=list(preload),
            log_path=tmp_path / "fs.log",
        )
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def children(make_server: Callable[..., ForkServer]) -> Iterator[list[Any]]:
    """Commands to kill and wait for; depends on make_server so it ends before the servers."""
    started: list[Any] = []
    yield started
    for child in started:
        kill(child)


@pytest.fixture
def server_env() -> dict[str, str]:
    return hermetic_env(PY, extra={"FS_SERVER_ONLY": "server"})


@pytest.fixture
def request_env() -> dict[str, str]:
    return hermetic_env(PY, extra={"FS_REQUEST_ONLY": "request"})


@pytest.fixture
def server(make_server: Callable[..., ForkServer], server_env: dict[str, str]) -> ForkServer:
    return make_server(["colorsys"], server_env)


@pytest.fixture
def fork(children: list[Any]) -> Callable[..., ForkedProcess]:
    """Fork `argv` from `server` (it must accept it); the child is killed at teardown."""

    def start(
        server: ForkServer,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        merge_stderr: bool = False,
        after: Sequence[str] | None = None,
    ) -> ForkedProcess:
        target = server.accepts(argv, env=env, cwd=cwd)
        assert target is not None, f"the server does not accept {argv}"
        child = ForkedProcess.start(
            server, target, argv, cwd=cwd, env=env, merge_stderr=merge_stderr, after=after
        )
        children.append(child)
        return child

    return start


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> SendCounter:
    counter = SendCounter(socket.send_fds)
    monkeypatch.setattr(socket, "send_fds", counter)
    return counter


@pytest.fixture
def gated(
    lib: Path, make_server: Callable[..., ForkServer]
) -> Iterator[tuple[ForkServer, dict[str, str]]]:
    """A server whose preload is held twice: `gate` until lib/go exists, then `blocker`
    (which first writes lib/blocking) until lib/marker exists. Yields (server, env)."""
    write(lib / "gate.py", WAIT_FOR_FILE.format(before="", cap=CAP, file="go"))
    touch_blocking = "open(os.path.join(here, 'blocking'), 'w').close()"
    write(lib / "blocker.py", WAIT_FOR_FILE.format(before=touch_blocking, cap=CAP, file="marker"))
    env = hermetic_env(PY, extra={"PYTHONPATH": str(lib)})
    server = make_server(["gate", "blocker"], env)
    yield server, env
    for name in ("go", "marker"):  # never leave the server blocked on a failed test
        (lib / name).touch()


@pytest.fixture
def threaded_server(
    lib: Path, make_server: Callable[..., ForkServer]
) -> tuple[ForkServer, dict[str, str]]:
    """A server whose preload starts a thread. Returns (server, env)."""
    write(
        lib / "threadstarter.py",
        "import threading\nimport time\n\n"
        "threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n",
    )
    env = hermetic_env(PY, extra={"PYTHONPATH": str(lib)})
    return make_server(["threadstarter"], env), env


def observe(child: ForkedProcess) -> dict[str, Any]:
    out, err = child.communicate(timeout=CAP)
    assert child.returncode == 0, err.decode()
    return json.loads(out)


@pytest.fixture
def module_run(
    server: ForkServer, app: Path, request_env: dict[str, str], fork: Callable[..., ForkedProcess]
) -> dict[str, Any]:
    """What `python -m observe one two`, forked from `server`, observed."""
    return observe(fork(server, [PY, "-m", "observe", "one", "two"], cwd=app, env=request_env))


# --- fork_target / accepts ----------------------------------------------------------------


def test_fork_target_module_with_args(tmp_path: Path) -> None:
    target = fork_target([PY, "-m", "pkg.mod", "a"], PY, tmp_path)
    assert target == ForkTarget("module", "pkg.mod", ("a",), no_bytecode=False)


def test_fork_target_script_with_no_bytecode(tmp_path: Path) -> None:
    write(tmp_path / "script.py", "")
    target = fork_target([PY, "-B", "script.py", "x"], PY, tmp_path)
    assert target == ForkTarget("script", "script.py", ("x",), no_bytecode=True)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([PY, "-u", "-m", "m"], id="interpreter-option"),
        pytest.param(["/usr/bin/other-python", "-m", "m"], id="other-interpreter"),
        pytest.param([PY, "missing.py"], id="missing-script"),
        pytest.param([PY], id="bare-interpreter"),
    ],
)
def test_fork_target_rejects(tmp_path: Path, argv: list[str]) -> None:
    assert fork_target(argv, PY, tmp_path) is None


def test_accepts_only_the_servers_python_variables(server: ForkServer, tmp_path: Path) -> None:
    env = hermetic_env(PY, extra={"SOMETHING_ELSE": "1"})
    argv = [PY, "-m", "mod"]
    assert server.accepts(argv, env=env, cwd=tmp_path) == ForkTarget("module", "mod", ())
    # PYTHONPATH is applied by the child itself (test_forkserver_paths); others act at start-up.
    with_path = {**env, "PYTHONPATH": str(tmp_path)}
    assert server.accepts(argv, env=with_path, cwd=tmp_path) == ForkTarget("module", "mod", ())
    with_warnings = {**env, "PYTHONWARNINGS": "error"}
    assert server.accepts(argv, env=with_warnings, cwd=tmp_path) is None


# --- a forked module ----------------------------------------------------------------------


def test_module_argv_and_sys_path_as_python_m(module_run: dict[str, Any], app: Path) -> None:
    assert module_run["argv"] == [str(app / "observe.py"), "one", "two"]
    assert module_run["path0"] == str(app)
    assert module_run["cwd"] == str(app)


def test_module_runs_as_main(module_run: dict[str, Any], app: Path) -> None:
    assert module_run["name"] == "__main__"
    assert module_run["file"] == str(app / "observe.py")


def test_module_gets_exactly_the_request_environment(
    module_run: dict[str, Any], request_env: dict[str, str]
) -> None:
    assert "FS_SERVER_ONLY" not in module_run["env"]
    assert module_run["env"]["FS_REQUEST_ONLY"] == "request"
    assert module_run["env"] == request_env


def test_module_stdin_is_empty(module_run: dict[str, Any]) -> None:
    assert module_run["stdin"] == ""


def test_module_runs_in_its_own_session(module_run: dict[str, Any]) -> None:
    assert module_run["own_session"] is True
    assert module_run["own_group"] is True


def test_module_finds_the_preload_already_imported(module_run: dict[str, Any]) -> None:
    assert module_run["preloaded"] is True


def test_module_main_namespace_is_bare(
    module_run: dict[str, Any], app: Path, request_env: dict[str, str]
) -> None:
    names = module_run["names"]
    assert not {"Server", "main", "json", "server", "sys"} & set(names)
    assert all(name.startswith("__") and name.endswith("__") for name in names), names
    cold = subprocess.run(
        [PY, "-m", "observe"],
        cwd=app,
        env=request_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=CAP,
    )
    assert names == json.loads(cold.stdout)["names"]


# --- a forked script ----------------------------------------------------------------------


def test_script_argv_file_and_sys_path(
    server: ForkServer, app: Path, request_env: dict[str, str], fork: Callable[..., ForkedProcess]
) -> None:
    argv = [PY, "-B", "scripts/observe_script.py", "x"]
    seen = observe(fork(server, argv, cwd=app, env=request_env))
    assert seen["argv"] == ["scripts/observe_script.py", "x"]
    assert seen["file"] == str(app / "scripts" / "observe_script.py")
    assert seen["path0"] == os.path.realpath(app / "scripts")
    assert seen["name"] == "__main__"


# --- exit codes, wait, communicate ----------------------------------------------------------


def test_sys_exit_code_is_reported(
    server: ForkServer, app: Path, request_env: dict[str, str], fork: Callable[..., ForkedProcess]
) -> None:
    write(app / "exit3.py", "import sys\n\nsys.exit(3)\n")
    child = fork(server, [PY, "-m", "exit3"], cwd=app, env=request_env)
    assert child.wait(timeout=CAP) == 3
    assert child.returncode == 3


def test_uncaught_exception_exits_1_with_traceback(
    server: ForkServer, app: Path, request_env: dict[str, str], fork: Callable[..., ForkedProcess]
) -> None:
    write(app / "boom.py", "raise ValueError('boom from the app')\n")
    child = fork(server, [PY, "-m", "boom"], cwd=app, env=request_env)
    _, err = child.communicate(timeout=CAP)
    assert child.returncode == 1
    assert b"Traceback (most recent call last)" in err
    assert b"ValueError: boom from the app" in err


def test_killed_child_reports_minus_signal(
    server: ForkServer, app: Path, request_env: dict[str, str], fork: Callable[..., ForkedProcess]
) -> None:
    write(app / "hold.py", WAIT_FOR_RELEASE)
    child = fork(server, [PY, "-m", "hold", str(app / "never")], cwd=app, env=request_env)
    assert read_line(child.stdout) == b"ready\n"
    os.killpg(child.pid, signal.SIGKILL)
    assert child.wait(timeout=CAP) == -signal.SIGKILL


def test_wait_times_out_on_a_running_child_then_returns_its_code(
    server: ForkServer, app: Path, request_env: dict[str, str], fork: Callable[..., ForkedProcess]
) -> None:
    write(app / "hold.py", WAIT_FOR_RELEASE)
    release = app / "release"
    child = fork(server, [PY, "-m", "hold", str(release)], cwd=app, env=request_env)
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.1)
    assert child.poll() is None
    release.touch()
    assert child.wait(timeout=CAP) == 0


def test_communicate_keeps_stdout_and_stderr_apart(
    server: ForkServer, app: Path, request_env: dict[str, str], fork: Callable[..., ForkedProcess]
) -> None:
    write(app / "both.py", "import sys\n\nprint('to-out')\nprint('to-err', file=sys.stderr)\n")
    child = fork(server, [PY, "-m", "both"], cwd=app, env=request_env, merge_stderr=False)
    assert child.communicate(timeout=CAP) == (b"to-out\n", b"to-err\n")
    assert child.returncode == 0


# --- through ManagedProcess -----------------------------------------------------------------

SECRET = "s3cr3t-value-0123456789"


def test_managed_process_forked_output_is_logged_and_redacted(
    server: ForkServer,
    app: Path,
    request_env: dict[str, str],
    tmp_path: Path,
    children: list[Any],
) -> None:
    write(
        app / "talker.py",
        f"import time\n\nprint('token is {SECRET}')\nprint('talker up', flush=True)\n"
        "time.sleep(60)\n",
    )
    log = tmp_path / "logs" / "talker.log"
    proc = ManagedProcess.start(
        "talker",
        [PY, "-m", "talker"],
        cwd=app,
        env=request_env,
        log_path=log,
        redactor=Redactor([SECRET]),
        forkserver=server,
    )
    children.append(proc)
    assert proc.forked is True
    wait_until(lambda: "talker up" in proc.output(), "the talker's output")
    assert "token is ***" in proc.output()
    assert SECRET not in proc.output()
    logged = log.read_text(encoding="utf-8")
    assert "token is ***" in logged
    assert SECRET not in logged
    assert proc.stop(grace=CAP) == -signal.SIGTERM
    assert not proc.alive()


HELLO = "print('hello from the app')\n"


def test_managed_process_starts_cold_after_the_server_closed(
    server: ForkServer,
    app: Path,
    request_env: dict[str, str],
    tmp_path: Path,
    children: list[Any],
) -> None:
    server.close()
    assert_hello_runs_cold(server, app, request_env, tmp_path, children)


def test_server_with_a_thread_refuses_to_fork(
    threaded_server: tuple[ForkServer, dict[str, str]], app: Path
) -> None:
    server, env = threaded_server
    write(app / "hello.py", HELLO)
    argv = [PY, "-m", "hello"]
    target = server.accepts(argv, env=env, cwd=app)
    assert target is not None
    with pytest.raises(ForkServerUnavailable, match="threads"):
        ForkedProcess.start(server, target, argv, cwd=app, env=env, merge_stderr=True)


def test_managed_process_falls_back_when_the_server_refuses(
    threaded_server: tuple[ForkServer, dict[str, str]],
    app: Path,
    tmp_path: Path,
    children: list[Any],
) -> None:
    server, env = threaded_server
    assert_hello_runs_cold(server, app, env, tmp_path, children)


def assert_hello_runs_cold(
    server: ForkServer, app: Path, env: dict[str, str], tmp_path: Path, children: list[Any]
) -> None:
    """ManagedProcess falls back to an ordinary process, and the command still works."""
    write(app / "hello.py", HELLO)
    proc = ManagedProcess.start(
        "hello",
        [PY, "-m", "hello"],
        cwd=app,
        env=env,
        log_path=tmp_path / "hello.log",
        redactor=Redactor(),
        forkserver=server,
    )
    children.append(proc)
    assert proc.forked is False
    assert proc.wait(timeout=CAP) == 0
    assert "hello from the app" in proc.output()


# --- probes -----------------------------------------------------------------------------------


def test_forked_probe_reports_what_a_cold_probe_reports(
    server: ForkServer, app: Path, request_env: dict[str, str], tmp_path: Path
) -> None:
    script = write(tmp_path / "probes" / "probe.py", PROBE)

    def run(forkserver: ForkServer | None) -> dict[str, Any] | None:
        result = run_probe_script(
            script,
            ["alpha", "beta"],
            python=PY,
            cwd=app,
            env=request_env,
            timeout=CAP,
            forkserver=forkserver,
        )
        assert result.error_kind is None, result.output_tail
        assert result.returncode == 0
        return result.data

    forked, cold = run(server), run(None)
    assert (app / "modes.txt").read_text().split() == ["forked", "cold"]
    assert forked is not None
    assert forked["ok"] is True
    assert forked["argv"] == ["alpha", "beta"]
    assert forked == cold


# --- after / needs ----------------------------------------------------------------------------


def test_request_with_empty_after_is_forked_before_the_preloads_finish(
    gated: tuple[ForkServer, dict[str, str]],
    app: Path,
    lib: Path,
    sends: SendCounter,
    fork: Callable[..., ForkedProcess],
) -> None:
    server, env = gated
    write(app / "sees_marker.py", SEES_MARKER)
    argv = [PY, "-m", "sees_marker", str(lib / "marker")]
    early = InThread(lambda: fork(server, argv, cwd=app, env=env, after=[]))
    sends.wait_for(1)
    (lib / "go").touch()  # the request is already queued: served before `blocker`
    child = early.join()
    assert json.loads(read_line(child.stdout)) == {"marker": False}
    (lib / "marker").touch()
    assert child.wait(timeout=CAP) == 0


def test_request_with_after_none_waits_for_every_preload(
    gated: tuple[ForkServer, dict[str, str]],
    app: Path,
    lib: Path,
    sends: SendCounter,
    fork: Callable[..., ForkedProcess],
) -> None:
    server, env = gated
    write(app / "sees_marker.py", SEES_MARKER)
    argv = [PY, "-m", "sees_marker", str(lib / "marker")]
    late = InThread(lambda: fork(server, argv, cwd=app, env=env, after=None))
    sends.wait_for(1)
    (lib / "go").touch()  # the request is received before `blocker` starts...
    wait_until((lib / "blocking").exists, "the blocker preload to start")
    (lib / "marker").touch()  # ...and must not be forked before it finished
    child = late.join()
    assert json.loads(read_line(child.stdout)) == {"marker": True}
    assert child.wait(timeout=CAP) == 0


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_child_does_not_hold_the_pipes_of_a_request_still_waiting(
    gated: tuple[ForkServer, dict[str, str]],
    app: Path,
    lib: Path,
    sends: SendCounter,
    fork: Callable[..., ForkedProcess],
) -> None:
    server, env = gated
    write(app / "hello.py", HELLO)
    write(app / "hold.py", WAIT_FOR_RELEASE)
    waiting = InThread(lambda: fork(server, [PY, "-m", "hello"], cwd=app, env=env, after=None))
    sends.wait_for(1)
    argv = [PY, "-m", "hold", str(app / "release")]
    early = InThread(lambda: fork(server, argv, cwd=app, env=env, after=[]))
    sends.wait_for(2)
    (lib / "go").touch()  # both queued: `hold` is forked while `hello` still waits
    holder = early.join()
    assert read_line(holder.stdout) == b"ready\n"
    (lib / "marker").touch()
    hello = waiting.join()
    assert hello.stdout is not None
    pipe = f"pipe:[{os.fstat(hello.stdout.fileno()).st_ino}]"
    held = set()
    for fd in os.listdir(f"/proc/{holder.pid}/fd"):
        with contextlib.suppress(OSError):
            held.add(os.readlink(f"/proc/{holder.pid}/fd/{fd}"))
    (app / "release").touch()
    assert pipe not in held
