"""The one reader of `[tool.staging]`: find pyproject.toml, parse it, hand over the raw table.

Every entry point reads the table here — `load_config` (which validates it), the draft
that starts the app's interpreter early, and the gate (which needs only `app_dir` and the
settings path) — so a missing file, a TOML syntax error or a missing table reads the same
wherever it is met. Deliberately free of pydantic: the draft and the gate must not pay
for its import.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from staging.errors import ConfigError

WORKER_EXAMPLE = (
    '[tool.staging.worker]\ncommand = ["python", "-m", "yourapp.worker"]\ntask_queue = "yourapp"'
)


@dataclass(frozen=True)
class StagingTable:
    """`[tool.staging]` as written, unvalidated, and the file it came from."""

    pyproject: Path  # resolved
    table: dict[str, Any]

    @property
    def project_dir(self) -> Path:
        return self.pyproject.parent


def read_staging_table(project: Path | StagingTable) -> StagingTable:
    """The table of `project` (a dir holding pyproject.toml, or the file); `ConfigError`
    when there is no such file, it is not TOML, or it has no `[tool.staging]` table."""
    if isinstance(project, StagingTable):
        return project
    pyproject = find_pyproject(Path(project))
    return StagingTable(pyproject, _table_of(pyproject, _parse(pyproject)))


def find_pyproject(project: Path) -> Path:
    pyproject = project / "pyproject.toml" if project.is_dir() else project
    if not pyproject.is_file():
        shown = project.absolute()
        if project.is_dir():
            where = f"in {shown}"
            observed = f"the directory {shown} holds no pyproject.toml"
        else:
            where = f"at {shown}"
            observed = f"{shown} {'is not a file' if project.exists() else 'does not exist'}"
        raise ConfigError(
            f"no pyproject.toml {where}",
            expected="a project directory containing pyproject.toml, or the file's path",
            observed=observed,
            hint="pass --project pointing at the app's project directory "
            "(the one whose pyproject.toml has [tool.staging])",
        )
    return pyproject.resolve()


def _parse(pyproject: Path) -> dict[str, Any]:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{pyproject} cannot be read",
            expected="a readable UTF-8 file",
            observed=f"{type(exc).__name__}: {exc}",
            hint=f"check the permissions and encoding of {pyproject}",
        ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"at line (\d+), column (\d+)", str(exc))
        position, source_line = "the file", ""
        if where:
            line_no = int(where.group(1))
            position = f"line {line_no}, column {where.group(2)}"
            lines = text.splitlines()
            source_line = lines[line_no - 1] if 0 < line_no <= len(lines) else ""
        raise ConfigError(
            f"{pyproject} is not valid TOML ({position})",
            expected="valid TOML",
            observed=f"{exc}: {source_line}" if source_line else str(exc),
            evidence=[f"{pyproject}:{position}: {source_line}"] if source_line else [],
            hint=f"fix the TOML syntax at {position} of {pyproject} "
            "(strings need quotes, lists need brackets)",
        ) from exc


def _table_of(pyproject: Path, data: dict[str, Any]) -> dict[str, Any]:
    tool = data.get("tool", {})
    table = tool.get("staging") if isinstance(tool, dict) else None
    if table is None:
        raise ConfigError(
            f"{pyproject} has no [tool.staging] table",
            expected="a [tool.staging] table describing the worker and pipelines",
            observed=f"tables: {', '.join(sorted(data)) or 'none'}",
            hint=f"add to {pyproject}:\n[tool.staging]\n\n{WORKER_EXAMPLE}",
        )
    if not isinstance(table, dict):
        raise ConfigError(
            f"tool.staging in {pyproject} is not a table",
            expected="a table: [tool.staging]",
            observed=f"{type(table).__name__}: {table!r}"[:120],
            hint="write [tool.staging] as a table header followed by key = value lines",
        )
    return table
