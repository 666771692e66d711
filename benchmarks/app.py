"""The example app outside `staging run`: copies, settings, and its own commands by hand.

The physical limit and the scale figures need the app's worker and trigger without the
harness around them, with the same settings channel (a `.env` rendered from the app's own
`[tool.staging.env]`) and the same hermetic environment a run gives them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

from benchmarks.measure import BenchError
from staging.capture import CaptureServer
from staging.config.load import LoadedConfig, load_config
from staging.config.render import capture_names, placeholder_values, render_env
from staging.services.base import PostgresEndpoint, TemporalEndpoint
from staging.temporal.pollers import task_queue_pollers
from staging.workspace import hermetic_env, resolve_command
from staging.workspace.delivery import render_dotenv
from tests.corpus import apply_patch, load_case, materialize

PYTHON = sys.executable
POLL = 0.02  # DescribeTaskQueue interval: tighter than staging's, so the limit is a floor


def copy_case(case: str, dest: Path) -> Path:
    """A fresh git-committed copy of the example app with corpus `case` applied."""
    return materialize(case, dest)


def break_with(app: Path, case: str) -> None:
    """Commit `case`'s change on top of a copy that already has a green run (last-green)."""
    patch = load_case(case).patch
    if patch is None:
        raise BenchError(f"corpus case {case!r} has no change.patch to apply")
    apply_patch(patch, app)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@staging.invalid"]
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(app.parent)}
    subprocess.run(
        [*git, "commit", "--quiet", "--no-verify", "-am", f"bench: {case}"],
        cwd=app,
        env=env,
        check=True,
        capture_output=True,
    )


@dataclass
class App:
    """One copy of the app, its `[tool.staging]`, and the environment its commands get."""

    dir: Path
    loaded: LoadedConfig
    logs: Path

    @classmethod
    def load(cls, app_dir: Path, logs: Path) -> App:
        logs.mkdir(parents=True, exist_ok=True)
        return cls(app_dir, load_config(app_dir), logs)

    @property
    def task_queue(self) -> str:
        return self.loaded.config.worker.task_queue

    def command(self, which: str) -> list[str]:
        cfg = self.loaded.config
        if which == "worker":
            raw = cfg.worker.command
        elif which == "trigger":
            command = cfg.pipelines[0].command
            if command is None:
                raise BenchError("the first pipeline has no trigger command")
            raw = command
        else:
            raw = next(s.command for s in cfg.setup if s.name == which)
        return resolve_command(list(raw), PYTHON)

    def settings(
        self, postgres: PostgresEndpoint, temporal: TemporalEndpoint, captures: CaptureServer
    ) -> dict[str, str]:
        """The app's variables rendered for these services (what a run writes to `.env`)."""
        env = self.loaded.config.env
        urls = {name: captures.url(name) for name in capture_names(env)}
        return render_env(env, placeholder_values(postgres, temporal, urls), source="bench")

    def write_dotenv(self, values: Mapping[str, str]) -> None:
        path = self.dir / self.loaded.config.settings.path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(render_dotenv(values))

    def process_env(self) -> dict[str, str]:
        return hermetic_env(PYTHON)

    def start(self, which: str, tag: str = "") -> subprocess.Popen[bytes]:
        log = (self.logs / f"{which}{tag}.log").open("ab")
        with log:
            return subprocess.Popen(
                self.command(which),
                cwd=self.dir,
                env=self.process_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def run(self, which: str, timeout: float = 120, tag: str = "") -> float:
        """Run a command to completion; its wall time. A failure is a `BenchError`."""
        begin = time.monotonic()
        proc = self.start(which, tag)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(proc)
            raise BenchError(
                f"{which} did not finish in {timeout}s; {self.tail(which, tag)}"
            ) from None
        took = time.monotonic() - begin
        if code != 0 and not (which == "trigger" and self.completed(tag)):
            raise BenchError(f"{which} exited with {code}; {self.tail(which, tag)}")
        return took

    def completed(self, tag: str = "") -> bool:
        """The trigger printed its workflow's result (it may still abort at exit: see README)."""
        text = (self.logs / f"trigger{tag}.log").read_text(errors="replace")
        return '"rows_written"' in text

    def tail(self, which: str, tag: str = "", lines: int = 15) -> str:
        path = self.logs / f"{which}{tag}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "output tail:\n" + "\n".join(text.splitlines()[-lines:])


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace`; always reaped."""
    for sig, wait in ((15, grace), (9, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


async def wait_polling(
    client: Client, task_queue: str, proc: subprocess.Popen[bytes], timeout: float
) -> float:
    """Seconds from now until Temporal lists a workflow poller on `task_queue`."""
    begin = time.monotonic()
    while time.monotonic() - begin < timeout:
        if proc.poll() is not None:
            raise BenchError(f"the worker exited with {proc.returncode} before polling")
        try:
            if await task_queue_pollers(client, task_queue):
                return time.monotonic() - begin
        except RPCError:
            pass
        await asyncio.sleep(POLL)
    raise BenchError(f"no poller on {task_queue!r} after {timeout}s")


def worker_to_polling(
    app: App, temporal: TemporalEndpoint, timeout: float = 60
) -> tuple[subprocess.Popen[bytes], float]:
    """Start the worker and measure spawn -> first poller (the client connects untimed)."""

    async def measure() -> tuple[subprocess.Popen[bytes], float]:
        client = await Client.connect(temporal.address, namespace=temporal.namespace)
        begin = time.monotonic()
        proc = app.start("worker")
        try:
            await wait_polling(client, app.task_queue, proc, timeout)
        except BaseException:
            stop(proc)
            raise
        return proc, time.monotonic() - begin

    return asyncio.run(measure())
