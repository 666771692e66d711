from __future__ import annotations

import json
import stat
from pathlib import Path

from staging.up_file import write_up_file


def test_up_file_is_private_and_ignored(tmp_path: Path) -> None:
    path = write_up_file(tmp_path, {"postgres": {"password": "p@ss word"}})
    assert path == tmp_path / ".staging" / "up.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (tmp_path / ".staging" / ".gitignore").read_text() == "*\n"
    assert json.loads(path.read_text())["postgres"]["password"] == "p@ss word"
