"""Write failures in the state dir are `environment.unwritable` (exit 2), with the path,
the free space and a hint; other errors stay what they are (injected errors, no services)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from staging.result import FailureClass
from staging.services.disk import EnvironmentUnwritable, errno_in_text, writing


@pytest.mark.parametrize(
    ("number", "hint_word"),
    [(errno.ENOSPC, "free space"), (errno.EROFS, "read-only"), (errno.EACCES, "writable")],
)
def test_disk_and_permission_errors_are_classified(
    tmp_path: Path, number: int, hint_word: str
) -> None:
    target = tmp_path / "cache" / "entry"
    with pytest.raises(EnvironmentUnwritable) as info, writing(target, "the cache"):
        raise OSError(number, os.strerror(number), str(target))
    exc = info.value
    assert exc.failure_class is FailureClass.ENVIRONMENT_UNWRITABLE
    assert str(target) in exc.message and errno.errorcode[number] in exc.message
    assert "MiB free of" in str(exc.observed) and str(tmp_path) in str(exc.observed)
    assert hint_word in exc.hint
    assert isinstance(exc.__cause__, OSError)


def test_a_copytree_error_list_is_looked_into(tmp_path: Path) -> None:
    failed = shutil.Error([("a", "b", "[Errno 28] No space left on device: 'b'")])
    with pytest.raises(EnvironmentUnwritable, match="ENOSPC"), writing(tmp_path, "the mirror"):
        raise failed


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(errno.ENOENT, "No such file or directory", "x"),
        shutil.Error([("a", "b", "[Errno 5] Input/output error")]),
        ValueError("not an OSError"),
    ],
)
def test_other_errors_pass_through(tmp_path: Path, error: Exception) -> None:
    with pytest.raises(type(error)) as info, writing(tmp_path, "the cache"):
        raise error
    assert info.value is error


def test_log_lines_name_the_errno() -> None:
    line = 'initdb: error: could not write file "x": No space left on device'
    assert errno_in_text(line) == errno.ENOSPC
    assert errno_in_text("cp: cannot create directory 'y': Read-only file system") == errno.EROFS
    assert errno_in_text("FATAL: password authentication failed") is None
