"""Owner records that live with the resources themselves, so any machine's next run finds them.

An attached run creates things on a cluster other machines share: a database, a role,
workflows, maybe a namespace. Its record is written *with* them, not on the local disk:

- the role's comment (`COMMENT ON ROLE`), created in the same transaction as the role, is
  the run's record: it names the database, the namespace and the task queues, so a sweep
  finds the run's running workflows in a shared namespace too. It is removed last (the
  role is dropped after everything else), so a half-finished teardown stays findable;
- the database's comment repeats it, for a human looking at `\\l+`;
- a namespace created per run carries it in its `data` (`staging.owner`), for a run
  killed before its role existed.

When is the owner gone? On the owner's own host: its pid no longer runs with the recorded
start time (pids are reused). From another host a pid says nothing, so a record carries a
lease: `expires` = its start + the run's timeout + `lease_margin`; after that any host
presumes the owner dead. A detached run (`run --keep-on-failure`) has no lease: only
`staging down` removes it (by run id from `.staging/up.json`, or `--all` for this host's
detached runs whose owner is gone); another host's detached run is never swept from here.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from staging.services.state import ProcIdentity

MARK = "staging-owner "
NAMESPACE_KEY = "staging.owner"


@dataclass(frozen=True)
class OwnerRecord:
    run_id: str
    host: str
    pid: int
    start: int  # the owner's start time in clock ticks since boot (pids are reused)
    created: float  # epoch seconds
    expires: float  # epoch seconds; meaningful on other hosts only
    temporal: str = ""  # the frontend's host:port: a sweep cleans only its own cluster's runs
    database: str = ""
    role: str = ""
    namespace: str = ""
    namespace_created: bool = False
    task_queues: tuple[str, ...] = field(default=())
    detached: bool = False

    @classmethod
    def mine(cls, run_id: str, lease: float, **resources: Any) -> OwnerRecord:
        """A record owned by this process, presumed dead elsewhere after `lease` seconds."""
        me = ProcIdentity.of(os.getpid())
        now = time.time()
        return cls(
            run_id=run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            start=me.start if me is not None else -1,
            created=now,
            expires=now + lease,
            **resources,
        )

    @property
    def owner(self) -> str:
        return f"{self.host}:{self.pid}"

    def text(self) -> str:
        """The comment / namespace data value: a marker, then JSON."""
        data = asdict(self)
        data["task_queues"] = list(self.task_queues)
        return MARK + json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str | None) -> OwnerRecord | None:
        """The record in a comment, or None for anything that is not one of ours."""
        if not text or not text.startswith(MARK):
            return None
        try:
            data = json.loads(text[len(MARK) :])
            data["task_queues"] = tuple(str(q) for q in data.get("task_queues") or ())
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        except (ValueError, TypeError):
            return None

    def detach(self) -> OwnerRecord:
        return replace(self, detached=True)

    def abandoned(self, *, include_detached: bool = False, now: float | None = None) -> bool:
        """Whether a sweep may remove this run's resources (see the module docstring)."""
        if self.detached:
            return include_detached and not self._owner_runs()
        if self.host == socket.gethostname():
            return not self._owner_runs()
        return (time.time() if now is None else now) > self.expires

    def _owner_runs(self) -> bool:
        if self.host != socket.gethostname():
            return True  # unknowable from here: another host's detached run is its to stop
        return ProcIdentity(self.pid, self.start).alive()
