"""Which process listens on a loopback port: the proof that readiness talks to our server.

A port handed out by `free_port()` is free only until someone else binds it, and a server
that loses that race exits while a foreign server keeps answering on the port. So readiness
never trusts the port alone: it asks the kernel which socket listens there
(`/proc/net/tcp{,6}`, state LISTEN) and whether that socket is one of our process's file
descriptors (`/proc/<pid>/fd` -> `socket:[inode]`). A listener that is not ours means our
server cannot have bound the port: a clash, told at once instead of after a timeout.

`STAGING_TEST_POSTGRES_PORT` / `STAGING_TEST_TEMPORAL_PORT` force the port a service asks
for (a test hook: the fault matrix puts a foreign server there). A forced port is never
traded for another one on a clash; the run aborts `services.unavailable`.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

HOST = "127.0.0.1"
FORCE_ENV = "STAGING_TEST_{}_PORT"
_LISTEN = "0A"
# Local addresses whose listener takes connections to 127.0.0.1 (and so clashes with ours).
_LOOPBACK_V4 = {"0100007F", "00000000"}
_LOOPBACK_V6 = {
    "00000000000000000000000000000000",  # ::, dual-stack
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1
}


class Holder(Enum):
    NONE = "none"  # nothing listens (yet)
    OURS = "ours"
    FOREIGN = "foreign"
    UNKNOWN = "unknown"  # no /proc/net/tcp here (a sandbox): judged by liveness alone


def free_port() -> int:
    """An OS-chosen free port. Free only now: `holder()` tells a lost race at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def forced_port(service: str) -> int | None:
    """The port `STAGING_TEST_<SERVICE>_PORT` forces, if set (a test hook)."""
    raw = os.environ.get(FORCE_ENV.format(service.upper()), "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{FORCE_ENV.format(service.upper())}={raw!r} is not a port number")
    return int(raw)


def parse_listeners(table: str, port: int, loopback: set[str]) -> set[int]:
    """Inodes of LISTEN sockets on `port` in one `/proc/net/tcp*` table."""
    inodes = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != _LISTEN:
            continue
        address, _, hex_port = fields[1].partition(":")
        if int(hex_port, 16) == port and address.upper() in loopback:
            inodes.add(int(fields[9]))
    return inodes


def listeners(port: int, proc: Path = Path("/proc")) -> set[int] | None:
    """Socket inodes listening on `port` where a connection to 127.0.0.1 would land;
    None when the kernel's tables cannot be read."""
    found: set[int] = set()
    readable = False
    for name, loopback in (("tcp", _LOOPBACK_V4), ("tcp6", _LOOPBACK_V6)):
        with contextlib.suppress(OSError):
            found |= parse_listeners((proc / "net" / name).read_text(), port, loopback)
            readable = True
    return found if readable else None


def socket_inodes(pids: Iterable[int], proc: Path = Path("/proc")) -> set[int]:
    """Inodes of the sockets the processes `pids` hold open."""
    found = set()
    for pid in pids:
        try:
            entries = list(os.scandir(proc / str(pid) / "fd"))
        except OSError:
            continue
        for entry in entries:
            with contextlib.suppress(OSError):
                target = os.readlink(entry.path)
                if target.startswith("socket:["):
                    found.add(int(target[8:-1]))
    return found


def holder(port: int, pids: Iterable[int]) -> Holder:
    """Who listens on `port`: nobody, one of `pids`, or someone else."""
    inodes = listeners(port)
    if inodes is None:
        return Holder.UNKNOWN
    if not inodes:
        return Holder.NONE
    return Holder.OURS if inodes & socket_inodes(pids) else Holder.FOREIGN


def describe_holder(port: int) -> str:
    """`pid N (comm)` of whoever listens on `port`, for the evidence; best effort."""
    inodes = listeners(port) or set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and socket_inodes([int(entry.name)]) & inodes:
            with contextlib.suppress(OSError):
                comm = Path(entry.path, "comm").read_text().strip()
                return f"pid {entry.name} ({comm})"
            return f"pid {entry.name}"
    return "a process staging cannot see (another user or container)"
