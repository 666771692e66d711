"""The failure corpus: the example app `examples/everflow` and its broken variants.

Each case is a directory `tests/corpus/<case>/` holding

- `case.toml`: `expected` ("pass" | "fail"), `class` (the primary failure class, "" for a
  pass), optional `also_accept` (other classes a correct diagnosis may carry), `evidence`
  (substrings, matched case-insensitively, that the diagnosis' cause + evidence must name;
  "a|b" is satisfied by either), `description`, and `both_backends` (run it on docker *and*
  process, not just one);
- `change.patch` (optional): a git-style unified diff (`a/` `b/` prefixes, paths relative to
  the app root) applied with `git apply` in the copy (`patch -p1` accepts it too);
- `overlay/` (optional): files copied over the app after the patch.

`materialize(case, dest)` makes a fresh copy of the app with the case applied, and by
default commits it to a new git repository so the harness's git-aware copy sees exactly
that tree. The copy holds the app's files as a fresh clone has them (`copy_app`): what
git tracks plus untracked files it does not ignore, never ignored state such as the
`.staging/` a `nox -s staging` leaves in the example, caches or a developer's `.env`.
From a shell: `python -m tests.corpus CASE DEST` prints the app's path.
The patches are generated: `python -m tests.corpus.regenerate` (see that module).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from staging.result import FailureClass

CORPUS = Path(__file__).resolve().parent
REPO = CORPUS.parent.parent
APP = REPO / "examples" / "everflow"

# Never part of a copy, git or not: per-environment config, harness output, caches.
_NOT_COPIED = (".env", ".staging", ".git", "__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")
_KEYS = {
    "expected",
    "class",
    "also_accept",
    "evidence",
    "description",
    "both_backends",
    "deciding",
}
_CLASSES = {c.value for c in FailureClass}


class CorpusError(Exception):
    """A case is malformed or no longer applies to the app."""


@dataclass(frozen=True)
class Case:
    name: str
    expected: Literal["pass", "fail"]
    failure_class: str  # "" when expected == "pass"
    evidence: tuple[str, ...]
    description: str
    also_accept: tuple[str, ...] = ()
    both_backends: bool = False
    # Substrings ("a|b": either) the console's first 12 diagnosis lines must show; a
    # failing case without `deciding` is held to its `evidence` instead (issue 12).
    deciding: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return CORPUS / self.name

    @property
    def patch(self) -> Path | None:
        patch = self.path / "change.patch"
        return patch if patch.is_file() else None

    @property
    def overlay(self) -> Path | None:
        overlay = self.path / "overlay"
        return overlay if overlay.is_dir() else None

    def accepts(self, failure_class: str) -> bool:
        """True when a diagnosis of `failure_class` is a correct verdict for this case."""
        if self.expected == "pass":
            return failure_class == ""
        return failure_class == self.failure_class or failure_class in self.also_accept

    def deciding_missing(self, console: str) -> list[str]:
        """The deciding lines the console's diagnosis (its first 12 lines) does not show."""
        shown = "\n".join(console_diagnosis(console)[:12]).lower()
        wanted = self.deciding or self.evidence
        return [w for w in wanted if not any(alt.lower() in shown for alt in w.split("|"))]

    def evidence_missing(self, text: str) -> list[str]:
        """The `evidence` items that `text` (cause + evidence of a diagnosis) lacks."""
        lowered = text.lower()
        return [
            item
            for item in self.evidence
            if not any(alt.lower() in lowered for alt in item.split("|"))
        ]


def _case_names() -> list[str]:
    return sorted(p.parent.name for p in CORPUS.glob("*/case.toml"))


CASES: list[str] = _case_names()


def _strings(name: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CorpusError(f"{name}/case.toml: {key!r} must be a list of non-empty strings")
    return tuple(value)


def load_case(name: str) -> Case:
    """Read and validate `tests/corpus/<name>/case.toml`."""
    path = CORPUS / name / "case.toml"
    if not path.is_file():
        raise CorpusError(f"no corpus case {name!r} (known: {', '.join(CASES)})")
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    unknown = set(data) - _KEYS
    if unknown:
        raise CorpusError(f"{name}/case.toml: unknown keys {sorted(unknown)}")
    expected = data.get("expected")
    failure_class = data.get("class", "")
    if expected == "pass":
        if failure_class or data.get("also_accept") or data.get("evidence"):
            raise CorpusError(f"{name}/case.toml: a passing case has no class or evidence")
    elif expected == "fail":
        if failure_class not in _CLASSES:
            raise CorpusError(f"{name}/case.toml: class {failure_class!r} is not a failure class")
    else:
        raise CorpusError(f"{name}/case.toml: expected must be 'pass' or 'fail', not {expected!r}")
    also_accept = _strings(name, "also_accept", data.get("also_accept", []))
    if not set(also_accept) <= _CLASSES:
        raise CorpusError(f"{name}/case.toml: also_accept has unknown classes {also_accept}")
    evidence = _strings(name, "evidence", data.get("evidence", []))
    if expected == "fail" and not evidence:
        raise CorpusError(f"{name}/case.toml: a failing case must name its evidence")
    description = data.get("description", "")
    if not isinstance(description, str) or not description.strip():
        raise CorpusError(f"{name}/case.toml: description is required")
    deciding = _strings(name, "deciding", data.get("deciding", []))
    both_backends = data.get("both_backends", False)
    if not isinstance(both_backends, bool):
        raise CorpusError(f"{name}/case.toml: both_backends must be true or false")
    return Case(
        name=name,
        expected=expected,
        failure_class=failure_class,
        evidence=evidence,
        description=description.strip(),
        also_accept=also_accept,
        both_backends=both_backends,
        deciding=deciding,
    )


def console_diagnosis(console: str) -> list[str]:
    """The diagnosis a run printed: its `class: cause` line and the evidence under it.

    The cause line is the first line that starts with a failure class and a colon; the
    block ends before the `Hint:` line.
    """
    lines = console.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.split(":", 1)[0].strip() in _CLASSES), None)
    if start is None:
        return []
    block: list[str] = []
    for line in lines[start:]:
        if line.startswith("Hint:"):
            break
        block.append(line)
    return block


def _git(dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The ceiling keeps git from adopting a repository *around* dest (say, this one).
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(dest.parent)}
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(var, None)
    return subprocess.run(
        ["git", *args], cwd=dest, env=env, capture_output=True, text=True, check=False
    )


def apply_patch(patch: Path, app: Path, *, check_only: bool = False) -> None:
    """Apply a case's patch to the app at `app`; raise `CorpusError` if it does not apply."""
    args = ["apply", "--check", str(patch)] if check_only else ["apply", str(patch)]
    result = _git(app, *args)
    if result.returncode != 0:
        raise CorpusError(
            f"{patch} no longer applies to {app}: {result.stderr.strip()}\n"
            "Hint: regenerate the patch against the current examples/everflow."
        )


def _not_copied(rel: str) -> bool:
    return any(fnmatch.fnmatch(part, pat) for part in rel.split("/") for pat in _NOT_COPIED)


def app_files(source: Path) -> list[str]:
    """The app's files as a fresh clone would have them, as sorted posix paths.

    In a git checkout: tracked files that exist plus untracked ones git does not ignore
    (so a test sees an uncommitted edit to the example, but never its `.staging/`).
    Outside git (an unpacked sdist): every file. `_NOT_COPIED` is left out in both.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        env=env,
        capture_output=True,
        check=False,
    )
    if listed.returncode == 0:
        names = {os.fsdecode(p) for p in listed.stdout.split(b"\0") if p}
        names = {n for n in names if os.path.isfile(source / n)}
    else:
        names = {
            (Path(root) / name).relative_to(source).as_posix()
            for root, _dirs, filenames in os.walk(source)
            for name in filenames
        }
    return sorted(n for n in names if not _not_copied(n))


def copy_app(source: Path, dest: Path) -> Path:
    """Copy `app_files(source)` into `dest` (created; may exist empty); return `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in app_files(source):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, target)
    return dest


def materialize(case: str, dest: Path, *, git: bool = True) -> Path:
    """Copy the app into `dest` (absent or empty) with `case` applied; return `dest`.

    With `git`, `dest` becomes a fresh repository whose single commit is that tree.
    """
    spec = load_case(case)
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise CorpusError(f"{dest} is not empty")
    copy_app(APP, dest)
    if spec.patch is not None:
        apply_patch(spec.patch, dest)
    if spec.overlay is not None:
        shutil.copytree(spec.overlay, dest, dirs_exist_ok=True)
    if git:
        for args in (
            ("init", "--quiet", "--initial-branch=main"),
            ("add", "--all"),
            (
                "-c",
                "user.name=staging corpus",
                "-c",
                "user.email=corpus@staging.invalid",
                "-c",
                "commit.gpgsign=false",
                "commit",
                "--quiet",
                "--no-verify",
                "-m",
                f"everflow, corpus case {case}",
            ),
        ):
            result = _git(dest, *args)
            if result.returncode != 0:
                raise CorpusError(f"git {args[0]} in {dest} failed: {result.stderr.strip()}")
    return dest
