"""Readiness that proves identity: our process listens on the port we report.

Mixed into the process backend's services. `free_port()` hands out a port that is free
only until someone else binds it; the server that loses that race exits, while the
winner answers on the port. So a readiness wait aborts the moment a stranger holds our
port (`staging.services.ports`), a server that exits with a bind error counts as a clash
too, and a clash on a port we chose is retried at once on another one. A port forced by
`STAGING_TEST_<NAME>_PORT` (the test hook) is never traded: the clash is the answer.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from staging.errors import ServiceUnavailable
from staging.services import ports
from staging.services.disk import errno_in_text, unwritable
from staging.services.state import ProcIdentity, RunState

HOST = ports.HOST
PORT_ATTEMPTS = 5
_BIND_ERRORS = ("could not bind", "address already in use")


class PortIdentity:
    """Port choice, clash detection and the identity check of one service process."""

    name: str
    _port: int
    _forced: bool
    _clash: str | None
    _stopped: bool
    _proc: subprocess.Popen[bytes] | None
    _ident: ProcIdentity | None
    _state: RunState

    def log_tail(self, lines: int = 40) -> str:
        raise NotImplementedError

    def _exit_reason(self) -> str | None:
        raise NotImplementedError

    def _free_port(self) -> int:
        raise NotImplementedError

    def _choose_port(self) -> int:
        forced = ports.forced_port(self.name)
        self._forced = forced is not None
        return forced if forced is not None else self._free_port()

    def _refuse_a_taken_forced_port(self) -> None:
        """A forced port a stranger already holds: say so before any slow preparation."""
        forced = ports.forced_port(self.name)
        if forced is not None and ports.holder(forced, []) is ports.Holder.FOREIGN:
            self._port, self._forced = forced, True
            self._clash = f"{HOST}:{forced} is held by {ports.describe_holder(forced)}"
            raise self._clash_error(self._clash, 1)

    def _pids(self) -> list[int]:
        return [self._ident.pid] if self._ident is not None else []

    def _abort_reason(self) -> str | None:
        """Readiness stops at once when our server exited or a stranger holds our port."""
        reason = self._exit_reason()
        if reason is not None or not self._port:
            return reason
        if ports.holder(self._port, self._pids()) is ports.Holder.FOREIGN:
            self._clash = (
                f"{HOST}:{self._port} is held by {ports.describe_holder(self._port)}, "
                f"not by the {self.name} server staging started"
            )
            return f"port clash: {self._clash}"
        return None

    def _clash_seen(self) -> str | None:
        if self._clash is not None:
            return self._clash
        if self._proc is None or self._proc.poll() is None:
            return None
        for line in reversed(self.log_tail(20).splitlines()):
            if any(marker in line.lower() for marker in _BIND_ERRORS):
                return f"the {self.name} server could not bind its port: {line.strip()}"
        return None

    def _confirm_identity(self) -> None:
        """A ready answer counts only when our own process listens on the port."""
        found = ports.holder(self._port, self._pids())
        if found in (ports.Holder.OURS, ports.Holder.UNKNOWN) and self._exit_reason() is None:
            return
        if found is ports.Holder.FOREIGN:
            self._clash = f"{HOST}:{self._port} is held by {ports.describe_holder(self._port)}"
        raise ServiceUnavailable(
            f"{self.name}: the server that answered is not the one staging started",
            expected=f"the {self.name} server staging started listening on {HOST}:{self._port}",
            observed=self._exit_reason() or f"the listener is {found.value}",
            evidence=[f"{self.name} log tail:\n{self.log_tail()}"],
            hint="another server holds this port; staging never runs against a foreign server",
        )

    def _ready_on_some_port(
        self, launch: Callable[[], None], wait: Callable[[], None], *, launched: bool = False
    ) -> None:
        """Launch and wait; a clash on a chosen port is retried at once on another one.

        A forced port (the test hook) clashes for good: `services.unavailable` at once.
        """
        for attempt in range(PORT_ATTEMPTS):
            if attempt or not launched:
                self._clash = None
                launch()
            try:
                wait()
                self._confirm_identity()
                return
            except ServiceUnavailable as exc:
                clash = self._clash_seen()
                if clash is None or self._stopped:
                    self._raise_if_unwritable("the server's files", self._state.dir)
                    raise
                if self._forced or attempt + 1 >= PORT_ATTEMPTS:
                    raise self._clash_error(clash, attempt + 1) from exc

    def _raise_if_unwritable(self, what: str, where: Path | None) -> None:
        """A helper or server that died of a full disk / read-only mount says so in its log."""
        if self._stopped:
            return
        tail = self.log_tail(20)
        number = errno_in_text(tail)
        if number is not None:
            evidence = (f"{self.name} log tail:\n{tail}",)
            raise unwritable(where or self._state.dir, number, f"{self.name}: {what}", evidence)

    def _clash_error(self, clash: str, attempts: int) -> ServiceUnavailable:
        if self._forced:
            hint = f"free port {self._port} or unset {ports.FORCE_ENV.format(self.name.upper())}"
        else:
            hint = "something keeps taking the ports staging picks; find it (ss -ltnp)"
        return ServiceUnavailable(
            f"{self.name}: port clash on {HOST}:{self._port}",
            expected=f"the {self.name} server staging started listening on its port",
            observed=f"{clash} ({attempts} attempt{'s' if attempts > 1 else ''})",
            evidence=[f"{self.name} log tail:\n{self.log_tail()}"],
            hint=hint,
        )
