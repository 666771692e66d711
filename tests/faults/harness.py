"""Drive `staging run` as a user would, inject one fault, and look at what is left.

A `FaultRun` starts the harness in its own session with a private state dir and TMPDIR,
reads its console line by line (so a fault can land in a named phase), and measures
the time from the fault to the verdict. `leftovers()` lists what the run left on the
machine: processes, containers, temp dirs, state dirs and listening ports of that run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.leftovers import containers_of, processes_of

REPO = Path(__file__).resolve().parents[2]
# Rewritten by every matrix run, so kept out of git (.gitignore); `nox -s faults` prints it.
RESULTS = Path(__file__).resolve().parent / ".results.json"
_WAIT = 180.0  # a bound for a run that hangs, never a timing target

# The console line a finished phase prints: "✓ services 1.75s  process · postgres ...".
_PHASE_LINE = re.compile(r"^[✓✗!\-]\s+(\w+)\s+\d+\.\d+s")
# The console's last word on a run (printed before teardown): the time to verdict.
_VERDICT_LINE = re.compile(r"^staging (PASSED|FAILED|ABORTED|INTERRUPTED)")
_ENDPOINTS = re.compile(r"postgres 127\.0\.0\.1:(\d+) · temporal 127\.0\.0\.1:(\d+)")
# The phase that runs after each phase (the run's order, ARCHITECTURE.md).
NEXT_PHASE = {
    "config": "services",
    "services": "workspace",
    "workspace": "preflight",
    "preflight": "replay",
    "replay": "setup",
    "setup": "worker",
    "worker": "pipelines",
    "pipelines": "checks",
}


@dataclass
class FaultRun:
    app: Path
    backend: str
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    finished_phases: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    injected_at: float | None = None
    ended_at: float | None = None
    verdict_at: float | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread = field(default_factory=threading.Thread)

    def start(self, *extra: str) -> FaultRun:
        command = [sys.executable, "-m", "staging", "run", "--project", str(self.app)]
        command += ["--backend", self.backend, *extra]
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a signal for the harness reaches only the harness
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                found = _PHASE_LINE.match(line)
                if found:
                    self.finished_phases.append(found.group(1))
                if _VERDICT_LINE.match(line) and self.verdict_at is None:
                    self.verdict_at = time.monotonic()
                ports = _ENDPOINTS.search(line)
                if ports:
                    self.ports = [int(ports.group(1)), int(ports.group(2))]
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Until `condition` holds (checked on each console line); fail if the run ends."""
        deadline = time.monotonic() + _WAIT
        with self._cond:
            while not condition():
                assert self.proc is not None
                if self.proc.poll() is not None and not condition():
                    raise AssertionError(f"the run ended before {what}:\n{self.output()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {what} within {_WAIT:g}s:\n{self.output()}")
                self._cond.wait(0.05)

    def wait_phase(self, phase: str) -> None:
        """Until `phase` runs: the phase before it printed its line."""
        before = next(k for k, v in NEXT_PHASE.items() if v == phase)
        self.wait_until(lambda: before in self.finished_phases, f"the {phase} phase")

    def inject(self, fault: Callable[[], object]) -> None:
        fault()
        self.injected_at = time.monotonic()

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.inject(lambda: self.proc.send_signal(sig) if self.proc else None)

    def finish(self) -> int:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=_WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.ended_at = time.monotonic()
        self._reader.join(timeout=30)  # the console's last lines: the verdict
        return code

    @property
    def seconds(self) -> float | None:
        """From the fault to the verdict on the console (to the exit when none is printed)."""
        end = self.verdict_at or self.ended_at
        if self.injected_at is None or end is None:
            return None
        return round(end - self.injected_at, 2)

    @property
    def exit_seconds(self) -> float | None:
        """From the fault to the harness's exit: the verdict plus teardown."""
        if self.injected_at is None or self.ended_at is None:
            return None
        return round(self.ended_at - self.injected_at, 2)

    def output(self) -> str:
        return "\n".join(self.lines[-80:])

    def run_dir(self) -> Path | None:
        runs = self.app / ".staging" / "runs"
        found = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
        return found[-1] if found else None

    def run_id(self) -> str | None:
        run_dir = self.run_dir()
        return run_dir.name if run_dir is not None else None

    def verdict(self) -> dict[str, Any] | None:
        run_dir = self.run_dir()
        if run_dir is None or not (run_dir / "verdict.json").is_file():
            return None
        data: dict[str, Any] = json.loads((run_dir / "verdict.json").read_text())
        return data

    def failure_class(self) -> str | None:
        """The class on the console (the verdict may be the thing that could not be written)."""
        text = "\n".join(self.lines)
        found = re.findall(r"^([a-z]+\.[a-z_]+|interrupted): ", text, re.MULTILINE)
        return found[-1] if found else None


def fault_env(
    state_dir: Path, tmp_dir: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The harness's env: a private state dir and TMPDIR; never CI (no job summary writes)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_STEP_SUMMARY")}
    env |= {"STAGING_STATE_DIR": str(state_dir), "TMPDIR": str(tmp_dir)}
    # The offline images (compose/images/build.sh), as the docker integration tests use:
    # a fault case must never pull.
    env.setdefault("STAGING_POSTGRES_IMAGE", "staging/postgres:15")
    env.setdefault("STAGING_TEMPORAL_IMAGE", "staging/temporal:1.9.1")
    env |= dict(extra or {})
    return env


def port_answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def leftovers(run_id: str | None, *, state_dir: Path, tmp_dir: Path, ports: list[int]) -> list[str]:
    """Everything of `run_id` still on the machine; [] when the run cleaned up after itself."""
    found: list[str] = []
    if run_id:
        found += [f"process {p}" for p in processes_of(run_id)]
        found += [f"container {c}" for c in containers_of(run_id)]
        if state_dir.is_dir():
            found += [f"state dir {p}" for p in state_dir.iterdir() if run_id in p.name]
    if tmp_dir.is_dir():
        found += [f"temp {p}" for p in tmp_dir.iterdir()]
    found += [f"port {port} still answers" for port in ports if port_answers(port)]
    return found


def sweep_like_the_next_run(backend: str, state_dir: Path, tmp_dir: Path) -> list[str]:
    """What the next `staging run` does first (`sweep_leftovers`), with this case's dirs."""
    import tempfile

    from staging.services.environment import sweep_leftovers

    saved = os.environ.get("STAGING_STATE_DIR"), tempfile.tempdir
    os.environ["STAGING_STATE_DIR"] = str(state_dir)
    tempfile.tempdir = str(tmp_dir)  # where the killed run's probes made their scratch dirs
    try:
        if backend == "docker":
            from staging.services.docker_backend import DockerBackend

            return sweep_leftovers(DockerBackend(client=None))
        from staging.services.process_backend import ProcessBackend

        return sweep_leftovers(ProcessBackend())
    finally:
        if saved[0] is None:
            os.environ.pop("STAGING_STATE_DIR", None)
        else:
            os.environ["STAGING_STATE_DIR"] = saved[0]
        tempfile.tempdir = saved[1]


def record(backend: str, fault: str, row: dict[str, Any]) -> None:
    """Keep this case's outcome for the Reliability table (`python -m tests.faults.table`)."""
    try:
        results: dict[str, Any] = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        results = {}
    results.setdefault(backend, {})[fault] = row
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def service_pid(state_dir: Path, run_id: str, service: str) -> int:
    """The pid of a process-backend service of `run_id`, from its ownership record."""
    record = json.loads((state_dir / run_id / "owner.json").read_text())
    pids = [int(p["pid"]) for p in record["procs"] if service in str(p.get("service", ""))]
    assert pids, f"no {service} process in the record of {run_id}: {record['procs']}"
    return pids[0]


def kill_service(backend: str, state_dir: Path, run_id: str, service: str) -> None:
    """SIGKILL one of the run's services, as the OOM killer or `docker kill` would."""
    if backend == "process":
        os.kill(service_pid(state_dir, run_id, service), signal.SIGKILL)
        return
    import docker

    client = docker.from_env(timeout=10)
    try:
        for container in client.containers.list(filters={"label": f"staging.run={run_id}"}):
            if service in container.name or service in str(container.image.tags):
                container.kill()
                return
        raise AssertionError(f"no {service} container of run {run_id}")
    finally:
        client.close()


def worker_log_has(run: FaultRun, text: str) -> bool:
    run_dir = run.run_dir()
    log = run_dir / "logs" / "worker.log" if run_dir is not None else None
    return log is not None and log.is_file() and text in log.read_text(errors="replace")


def activity_running(run: FaultRun, activity: str) -> bool:
    """Temporal shows `activity` pending in one of the run's workflows (asked once)."""
    import asyncio

    from staging.services.base import TemporalEndpoint
    from staging.temporal.watch import pending_activities

    if len(run.ports) < 2:
        return False

    async def ask() -> list[str]:
        client = await TemporalEndpoint("127.0.0.1", run.ports[1], "default").connect()
        return await pending_activities(client)

    try:
        return any(p.startswith(f"{activity} ") for p in asyncio.run(ask()))
    except Exception:  # not answering yet, or a workflow closed between list and describe
        return False
