"""On-disk ownership records, so a later run can clean up after one that was SIGKILLed.

Every run of the process backend keeps `<base>/<run_id>/owner.json`: who owns it
(`host:pid` plus the owner's start time, because pids are reused), the processes it
started (pid + start time + name, so a sweep never kills a stranger that inherited a pid)
and the paths to remove. `staging up --detach` marks a run as detached in
`<base>/.detached/<run_id>`: its owner exits on purpose, and only `staging down` may stop it.
`<base>/.cache/` holds what runs share and rebuild when missing (binary mirrors, templates).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from staging.errors import ServiceUnavailable
from staging.services.disk import writing

STATE_ENV = "STAGING_STATE_DIR"
OWNER_FILE = "owner.json"
# In a cache entry: what it was built from, so a sweep can tell a stale entry.
SOURCE_FILE = "source"  # binary mirror: the wheel's package dir and version
BIN_FILE = "bin"  # template cluster: the Postgres bin dir it was initialised with
_MIN_SHM = 1 << 30
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _candidate_roots() -> list[Path]:
    # A throwaway cluster is ~30 MB of writes per run: on tmpfs that costs a fraction of what a
    # virtual disk does. Small /dev/shm (64 MB in containers) falls back to /tmp.
    roots = []
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= _MIN_SHM and os.access("/dev/shm", os.W_OK):
            roots.append(Path("/dev/shm"))
    except OSError:
        pass
    roots.append(Path(tempfile.gettempdir()))
    return roots


def default_base_dir() -> Path:
    """`$STAGING_STATE_DIR`, else `staging-<uid>` in /dev/shm (if roomy) or /tmp.

    Short on purpose: Postgres' Unix socket path must stay under 108 bytes.
    """
    env = os.environ.get(STATE_ENV)
    return Path(env) if env else _candidate_roots()[0] / f"staging-{os.getuid()}"


def candidate_base_dirs() -> list[Path]:
    """Every default location a run may have used, for `staging down --all`."""
    env = os.environ.get(STATE_ENV)
    if env:
        return [Path(env)]
    roots = {Path("/dev/shm"), *_candidate_roots()}
    return [root / f"staging-{os.getuid()}" for root in sorted(roots)]


def ensure_base_dir(base: Path) -> Path:
    """Create `base` (0711: the unprivileged Postgres user must traverse it, not list it)."""
    with writing(base, "the staging state dir"):
        base.mkdir(mode=0o711, parents=True, exist_ok=True)
    st = base.lstat()
    # A world-writable /tmp lets anyone pre-create our directory; refuse to use theirs.
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ServiceUnavailable(
            f"the staging state directory {base} is not ours",
            expected=f"a directory owned by uid {os.getuid()}",
            observed=f"uid {st.st_uid}, mode {stat.filemode(st.st_mode)}",
            hint=f"remove {base} or point {STATE_ENV} at a directory you own",
        )
    with writing(base, "the staging state dir"):
        os.chmod(base, 0o711)
    return base


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} is not a safe directory name")
    return run_id


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class ProcIdentity:
    """A process as it was when recorded: a pid alone can belong to someone else later."""

    pid: int
    start: int  # clock ticks since boot (field 22 of /proc/<pid>/stat)
    name: str = ""

    @classmethod
    def of(cls, pid: int) -> ProcIdentity | None:
        info = _stat(pid)
        return None if info is None else cls(pid=pid, start=info.start, name=info.comm)

    def alive(self) -> bool:
        """Still this very process, and not a zombie."""
        info = _stat(self.pid)
        return info is not None and info.start == self.start and info.state != "Z"

    def reused(self) -> bool:
        """The pid exists but belongs to a different process now."""
        info = _stat(self.pid)
        return info is not None and info.start != self.start


@dataclass(frozen=True)
class _Stat:
    comm: str
    state: str
    ppid: int
    pgrp: int
    start: int


def _stat(pid: int) -> _Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # comm may contain spaces and parentheses; it ends at the last ')'.
    head, _, rest = raw.rpartition(")")
    fields = rest.split()
    try:
        return _Stat(
            comm=head.partition("(")[2],
            state=fields[0],
            ppid=int(fields[1]),
            pgrp=int(fields[2]),
            start=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def live_pids() -> Iterator[tuple[int, _Stat]]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None and info.state != "Z":
                yield int(entry.name), info


@dataclass
class OwnerRecord:
    run_id: str
    owner: str  # "<host>:<pid>", the same format as container labels
    host: str
    pid: int
    pid_start: int
    boot_id: str
    backend: str = "process"
    procs: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [int(p["pid"]) for p in self.procs]

    def identities(self) -> list[ProcIdentity]:
        return [
            ProcIdentity(int(p["pid"]), int(p["start"]), str(p.get("name", ""))) for p in self.procs
        ]

    def to_json(self) -> str:
        data = asdict(self)
        data["pids"] = self.pids
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> OwnerRecord:
        data = json.loads(text)
        return cls(
            run_id=str(data["run_id"]),
            owner=str(data["owner"]),
            host=str(data.get("host", str(data["owner"]).rpartition(":")[0])),
            pid=int(data["pid"]),
            pid_start=int(data.get("pid_start", -1)),
            boot_id=str(data.get("boot_id", "")),
            backend=str(data.get("backend", "process")),
            procs=list(data.get("procs", [])),
            paths=[str(p) for p in data.get("paths", [])],
        )

    def owner_alive(self) -> bool:
        """False when the owner is gone: other host excluded by the caller, reboot, pid reuse."""
        if self.boot_id and boot_id() and self.boot_id != boot_id():
            return False
        return ProcIdentity(self.pid, self.pid_start).alive()


def new_record(run_id: str, backend: str = "process") -> OwnerRecord:
    me = ProcIdentity.of(os.getpid())
    host = socket.gethostname()
    return OwnerRecord(
        run_id=run_id,
        owner=f"{host}:{os.getpid()}",
        host=host,
        pid=os.getpid(),
        pid_start=me.start if me else -1,
        boot_id=boot_id(),
        backend=backend,
    )


@contextlib.contextmanager
def locked(base: Path) -> Iterator[None]:
    """One lock per base dir: record updates and sweeps are short and must not interleave."""
    fd = os.open(base / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_record(run_dir: Path) -> OwnerRecord | None:
    try:
        return OwnerRecord.from_json((run_dir / OWNER_FILE).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(run_dir: Path, record: OwnerRecord) -> None:
    tmp = run_dir / f".{OWNER_FILE}.{os.getpid()}"
    try:
        tmp.write_text(record.to_json())
        os.replace(tmp, run_dir / OWNER_FILE)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk must not leave half a record behind
        raise


class RunState:
    """The run directory of one run and its owner record, updated as services come and go.

    Once a sweep or `staging down` has claimed the run, updates become no-ops: a late
    `stop()` of the original owner must not resurrect a directory that was removed.
    """

    def __init__(self, base: Path, run_id: str, backend: str = "process") -> None:
        self.base = ensure_base_dir(base)
        self.run_id = check_run_id(run_id)
        self.dir = base / run_id
        self._backend = backend

    def create(self) -> None:
        with writing(self.dir, "the run's owner record"), locked(self.base):
            self.dir.mkdir(mode=0o711, exist_ok=True)
            if read_record(self.dir) is None:
                write_record(self.dir, new_record(self.run_id, self._backend))

    def _update(self, change: Callable[[OwnerRecord], None]) -> OwnerRecord | None:
        with locked(self.base):
            record = read_record(self.dir)
            if record is None:
                return None
            change(record)
            if record.procs or record.paths:
                write_record(self.dir, record)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
            return record

    def add_path(self, path: Path) -> None:
        def change(record: OwnerRecord) -> None:
            if str(path) not in record.paths:
                record.paths.append(str(path))

        self._update(change)

    def add_proc(self, ident: ProcIdentity, service: str, stop_signal: str = "SIGKILL") -> None:
        entry = {
            "pid": ident.pid,
            "start": ident.start,
            "name": ident.name,
            "service": service,
            "signal": stop_signal,
        }
        self._update(lambda r: r.procs.append(entry))

    def release(self, *, pid: int | None = None, paths: Iterable[Path] = ()) -> None:
        """Forget a stopped process and removed paths; the last release removes the run dir."""
        gone = {str(p) for p in paths}

        def change(record: OwnerRecord) -> None:
            record.procs = [p for p in record.procs if int(p["pid"]) != pid]
            record.paths = [p for p in record.paths if p not in gone]

        self._update(change)


def detached_dir(base: Path) -> Path:
    return base / ".detached"


def mark_detached(run_id: str, base: Path | None = None) -> None:
    """Record that `run_id` outlives its owner on purpose (`staging up --detach`)."""
    d = detached_dir(ensure_base_dir(base or default_base_dir()))
    d.mkdir(mode=0o700, exist_ok=True)
    (d / check_run_id(run_id)).write_text(socket.gethostname())


def clear_detached(run_id: str, base: Path | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        (detached_dir(base or default_base_dir()) / check_run_id(run_id)).unlink()


def detached_runs(base: Path | None = None) -> set[str]:
    d = detached_dir(base or default_base_dir())
    try:
        return {p.name for p in d.iterdir()}
    except FileNotFoundError:
        return set()


def cache_dir(base: Path) -> Path:
    cache = ensure_base_dir(base) / ".cache"
    with writing(cache, "the process backend's cache"):
        cache.mkdir(mode=0o711, exist_ok=True)
    return cache


def build_dir(final: Path) -> Path:
    """A private place to build `final` before publishing it."""
    return final.parent / f".build-{final.name}-{os.getpid()}-{secrets.token_hex(4)}"


def publish(build: Path, final: Path) -> None:
    """Atomically move a finished cache entry in place; a concurrent builder may have won."""
    try:
        os.rename(build, final)
    except OSError:
        shutil.rmtree(build, ignore_errors=True)
        if not final.exists():
            raise


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def mirror_tree(src: Path, dst: Path, keep: Callable[[Path], bool] = lambda _: True) -> None:
    """Hard-link (or copy, across filesystems) the files of a read-only tree that `keep` wants."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if not keep(Path(directory, n).relative_to(src))]

    shutil.copytree(src, dst, copy_function=_link_or_copy, symlinks=True, ignore=ignore)
