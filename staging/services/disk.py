"""Write failures in the state dir are the environment's fault: `environment.unwritable`.

The process backend writes its cache (binary mirror, template clusters) and each run's
dir under the state dir. A full disk, a read-only mount or a permission problem there
says nothing about the app, so it aborts with exit 2, naming the path and the free space,
instead of an `internal.error` or a vague `services.unavailable`. Errors come as an
`OSError` from our own writes, or as a line in the log of a helper we ran (cp, initdb,
postgres), which is all we see of theirs.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

from staging.errors import StagingError
from staging.result import FailureClass

UNWRITABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
# What the C library prints for those errnos; helpers' logs are all we have of theirs.
_LOG_MARKERS = {
    "no space left on device": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "read-only file system": errno.EROFS,
    "permission denied": errno.EACCES,
}
_STATE_HINT = "STAGING_STATE_DIR moves the state dir"


class EnvironmentUnwritable(StagingError):
    """The state dir (or a file in it) cannot be written: full, read-only, not permitted."""

    failure_class = FailureClass.ENVIRONMENT_UNWRITABLE


def free_space(path: Path) -> str:
    """`12.3 MiB free of 64.0 MiB on /mnt` for the nearest existing ancestor of `path`."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = shutil.disk_usage(probe)
    except OSError:
        return "free space unknown"
    return f"{usage.free / 2**20:.1f} MiB free of {usage.total / 2**20:.1f} MiB on {probe}"


def unwritable_errno(exc: BaseException) -> int | None:
    """The disk-or-permission errno behind `exc`, looking inside a `shutil.Error` list."""
    if isinstance(exc, shutil.Error):
        for item in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
            why = str(item[2]) if isinstance(item, tuple) and len(item) == 3 else ""
            found = errno_in_text(why)
            if found is not None:
                return found
        return None
    if isinstance(exc, OSError) and exc.errno in UNWRITABLE_ERRNOS:
        return exc.errno
    return None


def errno_in_text(text: str) -> int | None:
    lowered = text.lower()
    for marker, number in _LOG_MARKERS.items():
        if marker in lowered:
            return number
    return None


def unwritable(path: Path, number: int, what: str, evidence: tuple[str, ...] = ()) -> StagingError:
    """The classified abort for `path`, with the free space and the narrowest fix."""
    name = errno.errorcode.get(number, str(number))
    if number in (errno.ENOSPC, errno.EDQUOT):
        hint = f"free space there (`staging down --all --prune` drops unused caches); {_STATE_HINT}"
    elif number == errno.EROFS:
        hint = f"the file system is mounted read-only; {_STATE_HINT} to a writable one"
    else:
        hint = f"make {path} writable by uid/gid of this process; {_STATE_HINT}"
    return EnvironmentUnwritable(
        f"cannot write {what} at {path} ({name})",
        expected=f"{what} written under {path}",
        observed=f"{name}: {free_space(path)}",
        evidence=evidence,
        hint=hint,
    )


@contextlib.contextmanager
def writing(path: Path, what: str) -> Iterator[None]:
    """Turn a disk-or-permission `OSError` raised inside into `EnvironmentUnwritable`."""
    try:
        yield
    except StagingError:
        raise
    except OSError as exc:
        number = unwritable_errno(exc)
        if number is None:
            raise
        where = Path(exc.filename) if getattr(exc, "filename", None) else path
        raise unwritable(where, number, what) from exc
