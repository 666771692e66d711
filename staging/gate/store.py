"""The verdict store under `.staging/` in the app dir: what the gate and the reports read.

- `verdicts/<tree-hash>.json`: the newest conclusive verdict for exactly that code. A
  later run of the same tree replaces it, so a failed run shuts the gate again even if an
  earlier run of that tree passed, and a later green run reopens it. Runs that prove
  nothing about the code (aborted, interrupted) are never recorded here, and a partial
  pass (`--pipeline NAME`) does not replace a complete pass of the same tree.
- `verdicts/<tree-hash>.shards/K-of-N.json`: the same, per shard (`staging run --shard
  K/N`); the gate combines them with the full verdict (`staging.gate.union`).
- `last-green.json`: the tree, commit, run and settings snapshot of the last green run,
  the baseline for "what changed since it last worked".
- `runs/<run-id>/verdict.json`: every run's own verdict (written by `staging run`), listed
  newest first for `staging history` and `staging report`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from staging.atomic import write_json
from staging.config.paths import Boundary, confine
from staging.config.table import read_staging_table
from staging.errors import ConfigError, StagingError
from staging.gate.coverage import Coverage
from staging.gate.shards import ShardInfo
from staging.gate.signing import sign
from staging.state import STATE_DIRNAME, ensure_state_dir
from staging.workspace.files import DEFAULT_SETTINGS_PATH

VERDICTS = "verdicts"
LAST_GREEN = "last-green.json"
RUNS = "runs"
SHARDS_SUFFIX = ".shards"
_TREE_HASH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class StoreError(StagingError):
    """A file of the verdict store is unreadable or not what staging wrote."""


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    run_dir: Path
    verdict: dict[str, Any] | None  # None: the run left no verdict (still running, or killed)

    @property
    def status(self) -> str:
        return str(self.verdict.get("status", "?")) if self.verdict else "incomplete"

    @property
    def started_at(self) -> str:
        return str(self.verdict.get("started_at") or "") if self.verdict else ""

    @property
    def tree(self) -> dict[str, Any]:
        tree = self.verdict.get("tree") if self.verdict else None
        return tree if isinstance(tree, dict) else {}

    @property
    def failure_class(self) -> str | None:
        diagnosis = self.verdict.get("diagnosis") if self.verdict else None
        return str(diagnosis["class"]) if isinstance(diagnosis, dict) else None


def app_dir_of(project: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The app dir named by `[tool.staging] app_dir` (or `STAGING_APP_DIR`)."""
    return gate_target(project, environ)[0]


def gate_target(project: Path, environ: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """The app dir and the delivered settings path (`[tool.staging.settings] path`).

    Deliberately not the full `load_config`: the gate runs on a deploy machine that
    need not have the app's interpreter or services configured, and these two are all
    the tree hash needs (the settings path is left out of it, as from the run's copy).
    """
    environ = os.environ if environ is None else environ
    read = read_staging_table(project)
    pyproject, table = read.pyproject, read.table
    from_env = environ.get("STAGING_APP_DIR")
    value = from_env or str(table.get("app_dir", "."))
    # As load_config: never hash the directories around the project.
    app_dir = confine(
        value,
        key="tool.staging.app_dir",
        base=read.project_dir,
        boundary=Boundary.of_project(pyproject),
        pyproject=pyproject,
        origin="env:STAGING_APP_DIR" if from_env else "file",
    )
    if not app_dir.is_dir():
        raise ConfigError(
            f"tool.staging.app_dir in {pyproject} is not a directory",
            expected="the app's root, relative to pyproject.toml",
            observed=f"{value!r} -> {app_dir}",
            hint='set app_dir to the app\'s root relative to pyproject.toml (usually ".")',
        )
    settings = table.get("settings")
    path = settings.get("path") if isinstance(settings, dict) else None
    settings_path = environ.get("STAGING_SETTINGS_PATH") or path or DEFAULT_SETTINGS_PATH
    return app_dir, str(settings_path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(
            f"{path} is not valid JSON",
            expected="a JSON document written by staging",
            observed=f"{exc.msg} at line {exc.lineno}",
            hint=f"delete {path} and run staging again; never edit the store by hand",
        ) from exc
    if not isinstance(data, dict):
        raise StoreError(
            f"{path} is not a JSON object",
            observed=type(data).__name__,
            hint=f"delete {path} and run staging again",
        )
    return data


NOT_RECORDED = (
    "gate record: unchanged (an aborted run says nothing about the code; "
    "the tree keeps its previous record)"
)


def is_conclusive(verdict: Mapping[str, Any]) -> bool:
    """Whether a verdict says something about the code, and so may become its gate record.

    Only a pass (exit 0) or an app failure (exit 1) does. An aborted run (exit 2: the
    config, a service lost, a full disk, staging's own bug) or an interrupted one (130,
    143) proves nothing either way: the tree keeps its previous record, so a Postgres
    that died mid-run never closes the gate on code that passed.
    """
    return verdict.get("status") in ("passed", "failed") and verdict.get("exit_code") in (0, 1)


def _partial_pass(verdict: Mapping[str, Any] | None) -> bool:
    if not verdict or verdict.get("status") != "passed":
        return False
    coverage = Coverage.from_verdict(verdict)
    return coverage is None or not coverage.complete


def _complete_pass(verdict: Mapping[str, Any] | None) -> bool:
    if not verdict or verdict.get("status") != "passed":
        return False
    return not _partial_pass(verdict)


class VerdictStore:
    def __init__(self, app_dir: Path) -> None:
        self.app_dir = app_dir
        self.root = app_dir / STATE_DIRNAME

    @property
    def verdicts_dir(self) -> Path:
        return self.root / VERDICTS

    @property
    def last_green_path(self) -> Path:
        return self.root / LAST_GREEN

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS

    def verdict_path(self, tree_hash: str) -> Path:
        if not _TREE_HASH.match(tree_hash):
            raise StoreError(
                "a tree hash is not a safe file name",
                expected="letters, digits, '.', '_', ':' or '-'",
                observed=repr(tree_hash[:80]),
                hint="this is a bug in staging; please report it",
            )
        return self.verdicts_dir / f"{tree_hash.replace(':', '-')}.json"

    def record(self, verdict: dict[str, Any], *, key: bytes | None = None) -> Path | None:
        """Store `verdict` as the newest for its tree (signed when `key`).

        None when it is not stored: no tree, a run that says nothing about the code
        (`is_conclusive`), or a partial pass over a complete pass of the same tree.
        """
        tree = verdict.get("tree")
        if not isinstance(tree, dict) or not tree.get("hash"):
            return None
        if not is_conclusive(verdict):
            return None
        shard = ShardInfo.from_verdict(verdict)
        if shard is not None:
            # One file per shard: a shard's pass is partial by design and must neither
            # replace the tree's full verdict nor another shard's.
            path = self.shard_dir(str(tree["hash"])) / shard.file_name
        else:
            path = self.verdict_path(str(tree["hash"]))
            if _partial_pass(verdict) and _complete_pass(self._current(path)):
                return None
        ensure_state_dir(self.app_dir)
        write_json(path, sign(verdict, key) if key else verdict)
        return path

    def _current(self, path: Path) -> dict[str, Any] | None:
        try:
            return _read_json(path)
        except StoreError:
            return None

    def load(self, tree_hash: str) -> dict[str, Any] | None:
        return _read_json(self.verdict_path(tree_hash))

    def shard_dir(self, tree_hash: str) -> Path:
        """`verdicts/<tree>.shards/`: `K-of-N.json`, the newest conclusive verdict of each
        shard of that tree (`staging run --shard K/N`)."""
        return self.verdict_path(tree_hash).with_suffix(SHARDS_SUFFIX)

    def shard_records(self, tree_hash: str) -> list[tuple[Path, dict[str, Any]]]:
        """The tree's shard verdicts, by file name; a StoreError for one that is garbled."""
        directory = self.shard_dir(tree_hash)
        if not directory.is_dir():
            return []
        records = []
        for path in sorted(directory.glob("*.json")):
            verdict = _read_json(path)
            if verdict is not None:
                records.append((path, verdict))
        return records

    def last_green(self) -> dict[str, Any] | None:
        return _read_json(self.last_green_path)

    def set_last_green(
        self,
        verdict: dict[str, Any],
        *,
        settings: dict[str, Any] | None,
        shards_cover_tree: bool = False,
    ) -> Path | None:
        """`shards_cover_tree`: this pass is a shard's, and with the tree's other shard
        verdicts it covers every pipeline (the gate's own decision, made by the caller)."""
        tree = verdict.get("tree")
        # Green means what opens the gate: a partial pass is no baseline for "what changed".
        complete = _complete_pass(verdict) or (
            shards_cover_tree and verdict.get("status") == "passed"
        )
        if not complete or not isinstance(tree, dict):
            return None
        ensure_state_dir(self.app_dir)
        write_json(
            self.last_green_path,
            {
                "tree": tree.get("hash"),
                "commit": tree.get("commit"),
                "dirty": tree.get("dirty"),
                "run_id": verdict.get("run_id"),
                "finished_at": verdict.get("finished_at"),
                "settings": settings,
            },
        )
        return self.last_green_path

    def runs(self, limit: int | None = None) -> list[RunSummary]:
        """Runs newest first (run ids start with a UTC timestamp, so names sort by time)."""
        if not self.runs_dir.is_dir():
            return []
        dirs = sorted((d for d in self.runs_dir.iterdir() if d.is_dir()), reverse=True)
        summaries = []
        for run_dir in dirs[:limit] if limit is not None else dirs:
            try:
                verdict = _read_json(run_dir / "verdict.json")
            except StoreError:
                verdict = None
            summaries.append(RunSummary(run_dir.name, run_dir, verdict))
        return summaries

    def run(self, run_id: str | None = None) -> RunSummary:
        """The given run (an id or a unique prefix of one), or the newest."""
        runs = self.runs()
        if not runs:
            raise StoreError(
                f"no staging runs recorded in {self.runs_dir}",
                hint="run `staging run` (or `nox -s staging`) first",
            )
        if run_id is None:
            return runs[0]
        matches = [r for r in runs if r.run_id == run_id] or [
            r for r in runs if r.run_id.startswith(run_id)
        ]
        if len(matches) != 1:
            shown = ", ".join(r.run_id for r in (matches or runs)[:5])
            raise StoreError(
                f"run {run_id!r} {'is ambiguous' if matches else 'not found'} in {self.runs_dir}",
                expected="a run id from `staging history`",
                observed=f"{len(matches)} match(es); e.g. {shown}",
                hint="list runs with `staging history`",
            )
        return matches[0]
