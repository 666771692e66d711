"""The failure corpus stays true to the app: every case applies, and breaks what it claims.

No services: the behavioural checks run the materialized app's own code in a subprocess
(settings loading, DSN parsing, the Temporal sandbox's import validation).
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.corpus as corpus
from tests.corpus import APP, CASES, CorpusError, load_case, materialize, regenerate

# The issue's table: the verdict and primary class each case must get.
TABLE = {
    "good": ("pass", ""),
    "env-file-removed": ("fail", "settings.secret_missing"),
    "sandbox-structlog": ("fail", "worker.sandbox"),
    "sandbox-fixed-unsandboxed": ("pass", ""),
    "wrong-task-queue": ("fail", "worker.not_polling"),
    "password-not-escaped": ("fail", "pipeline.stuck_retrying"),
    "missing-migration": ("fail", "pipeline.stuck_retrying"),
    "notify-flood": ("fail", "notifications.flood"),
    "slow-but-fine": ("pass", ""),
}
BOTH_BACKENDS = {"good", "env-file-removed", "sandbox-structlog"}

# Per case: file -> [(text, must be present?)]. Every other file must equal `good`'s.
CHANGES: dict[str, dict[str, list[tuple[str, bool]]]] = {
    "good": {},
    "env-file-removed": {"everflow/settings.py": [('env_file=".env"', False)]},
    "sandbox-structlog": {
        "everflow/workflows.py": [
            ("\nimport structlog\nfrom temporalio import workflow\n", True),
            ("    import structlog\n", False),
        ]
    },
    "sandbox-fixed-unsandboxed": {
        "everflow/workflows.py": [("\nimport structlog\nfrom temporalio import workflow\n", True)],
        "everflow/worker.py": [("workflow_runner=UnsandboxedWorkflowRunner()", True)],
    },
    "wrong-task-queue": {"everflow/worker.py": [('task_queue = "everflow-v2"', True)]},
    "password-not-escaped": {"everflow/settings.py": [("quote(self.db_password", False)]},
    "missing-migration": {
        "everflow/migrate.py": [
            ("create table if not exists daily_conversions", False),
            ("create table if not exists pipeline_runs", True),
        ]
    },
    "notify-flood": {"everflow/workflows.py": [("for bad in summary.rejected:", True)]},
    "slow-but-fine": {"everflow/activities.py": [("time.sleep(3)", True)]},
}

HOSTILE = "p@ss:w/rd%#'\" x"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="corpus-unit-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def apps(scratch: Path) -> dict[str, Path]:
    """Every case materialized once (without git: these tests only read the files)."""
    return {case: materialize(case, scratch / "apps" / case, git=False) for case in CASES}


def app_env() -> dict[str, str]:
    """Hermetic, like the harness: nothing from the developer's shell configures the app."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_in(app: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=app,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --- the corpus itself -------------------------------------------------------------------


def test_corpus_has_every_case_of_the_issue() -> None:
    assert set(TABLE) <= set(CASES)  # other issues may add cases of their own


@pytest.mark.parametrize("name", CASES)
def test_case_toml_is_valid(name: str) -> None:
    case = load_case(name)
    assert case.description
    assert case.accepts(case.failure_class)
    assert not case.accepts("internal.error")
    if case.expected == "fail":
        assert case.evidence
        assert case.patch is not None or case.overlay is not None


@pytest.mark.parametrize("name", sorted(TABLE))
def test_case_toml_matches_the_table(name: str) -> None:
    case = load_case(name)
    assert (case.expected, case.failure_class) == TABLE[name]
    assert case.both_backends == (name in BOTH_BACKENDS)


def test_load_case_rejects_unknown_cases_and_bad_toml(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CorpusError, match="no corpus case"):
        load_case("no-such-case")
    fake = scratch / "fake-corpus"
    for name, text in {
        "typo": 'expected = "fail"\nclass = "settings.secret_mising"\nevidence = ["x"]\n'
        'description = "d"\n',
        "unknown-key": 'expected = "pass"\ndescription = "d"\nclas = ""\n',
        "no-evidence": 'expected = "fail"\nclass = "check.failed"\ndescription = "d"\n',
        "pass-with-class": 'expected = "pass"\nclass = "check.failed"\ndescription = "d"\n',
    }.items():
        (fake / name).mkdir(parents=True)
        (fake / name / "case.toml").write_text(text)
    monkeypatch.setattr(corpus, "CORPUS", fake)
    for name, message in {
        "typo": "not a failure class",
        "unknown-key": "unknown keys",
        "no-evidence": "must name its evidence",
        "pass-with-class": "no class or evidence",
    }.items():
        with pytest.raises(CorpusError, match=message):
            load_case(name)


def test_evidence_alternatives_and_case_insensitivity() -> None:
    case = load_case("password-not-escaped")
    assert case.evidence_missing("psycopg.ProgrammingError: invalid PERCENT-ENCODED token") == []
    assert case.evidence_missing('FATAL: password authentication failed for user "x"') == []
    assert case.evidence_missing("connection refused") == list(case.evidence)


# --- patches apply, and change exactly what they claim -----------------------------------


@pytest.mark.parametrize("name", [c for c in CASES if load_case(c).patch])
def test_patch_applies_cleanly_with_git_apply_and_patch(name: str, scratch: Path) -> None:
    patch = load_case(name).patch
    assert patch is not None
    target = scratch / "patch-check" / name
    corpus.copy_app(APP, target)
    corpus.apply_patch(patch, target, check_only=True)
    dry_run = subprocess.run(
        ["patch", "-p1", "--dry-run", "--fuzz=0", "--force", "-i", str(patch)],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    assert dry_run.returncode == 0, dry_run.stdout + dry_run.stderr


@pytest.mark.parametrize("name", CASES)
def test_materialized_case_differs_from_good_exactly_where_expected(
    name: str, apps: dict[str, Path]
) -> None:
    good, app = apps["good"], apps[name]
    changed = {f for f in files(good) if not filecmp.cmp(good / f, app / f, shallow=False)}
    if name not in CHANGES:  # a case another issue owns: it must at least change something
        spec = load_case(name)
        if spec.patch is not None or spec.overlay is not None:
            assert changed or files(app) != files(good)
        return
    assert files(app) == files(good)
    assert changed == set(CHANGES[name])
    for rel, expectations in CHANGES[name].items():
        text = (app / rel).read_text()
        for needle, present in expectations:
            assert (needle in text) is present, f"{name}: {rel} {needle!r} present={present}"


@pytest.mark.parametrize("name", sorted(regenerate.CHANGES))
def test_patch_is_what_regenerate_makes(name: str, apps: dict[str, Path], scratch: Path) -> None:
    # The patch and its source (the edits in regenerate.py) must not drift apart.
    copy = scratch / "regen" / name
    shutil.copytree(apps["good"], copy)
    regenerate.CHANGES[name](copy)
    for rel in files(apps[name]):
        assert filecmp.cmp(copy / rel, apps[name] / rel, shallow=False), rel


def test_good_is_the_app_as_shipped(apps: dict[str, Path]) -> None:
    good = apps["good"]
    assert 'env_file=".env",\n' in (good / "everflow/settings.py").read_text()
    for rel in files(good):
        assert filecmp.cmp(APP / rel, good / rel, shallow=False), rel


# --- materialize -------------------------------------------------------------------------


def test_materialize_commits_a_clean_git_tree(scratch: Path) -> None:
    app = materialize("env-file-removed", scratch / "git-app")
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=app, capture_output=True, text=True, check=True
    )
    assert log.stdout.splitlines() == ["everflow, corpus case env-file-removed"]
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        cwd=app,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == ""
    top = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=app, capture_output=True, text=True, check=True
    )
    assert Path(top.stdout.strip()) == app


def test_materialize_leaves_out_env_and_caches(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = corpus.copy_app(APP, scratch / "dirty-source")  # not a git checkout
    (source / ".env").write_text('DB_PASSWORD="from the developer\'s machine"\n')
    (source / ".staging" / "runs" / "r1").mkdir(parents=True)
    (source / "everflow" / "__pycache__").mkdir()
    (source / "everflow" / "__pycache__" / "settings.cpython-311.pyc").write_bytes(b"")
    monkeypatch.setattr(corpus, "APP", source)
    app = materialize("good", scratch / "clean-copy", git=False)
    assert not (app / ".env").exists()
    assert not (app / ".staging").exists()
    assert not list(app.rglob("__pycache__"))
    assert (app / ".gitignore").is_file()


def test_materialize_copies_what_a_clone_has_and_no_ignored_state(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A git checkout of the example after `nox -s staging`: ignored state stays behind."""
    source = corpus.copy_app(APP, scratch / "checkout")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=source, check=True)
    subprocess.run([*git, "add", "-A"], cwd=source, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "example"], cwd=source, check=True)
    run = source / ".staging" / "runs" / "20260101-000000-abcdef"
    run.mkdir(parents=True)
    (run / "verdict.json").write_text("{}")
    (source / ".staging" / "verdicts").mkdir()
    (source / ".pytest_cache").mkdir()
    (source / "everflow" / "scratch.py").write_text("X = 1\n")  # untracked, not ignored
    monkeypatch.setattr(corpus, "APP", source)
    expected = sorted([*corpus.app_files(APP), "everflow/scratch.py"])
    assert corpus.app_files(source) == expected
    app = materialize("good", scratch / "from-checkout", git=False)
    assert not (app / ".staging").exists() and not (app / ".pytest_cache").exists()
    assert (app / "everflow" / "scratch.py").is_file()


def test_materialize_ignores_the_examples_own_staging_dir(scratch: Path) -> None:
    """`nox -s staging` leaves examples/everflow/.staging: the copy never carries it."""
    state = APP / ".staging"
    marker = state / "runs" / f"test-corpus-{os.getpid()}"  # ours alone; others may run too
    marker.mkdir(parents=True)
    try:
        (marker / "verdict.json").write_text("{}")
        assert not any(".staging" in rel for rel in corpus.app_files(APP))
        app = materialize("good", scratch / "with-example-state")
        assert not (app / ".staging").exists()
        target = corpus.copy_app(APP, scratch / "with-example-state-2")
        (target / ".staging" / "runs").mkdir(parents=True)  # what used to raise FileExistsError
    finally:
        shutil.rmtree(marker, ignore_errors=True)
        # Empty directories only: a live run's .staging holds its .gitignore.
        for path in (state / "runs", state):
            with contextlib.suppress(OSError):
                path.rmdir()


def test_materialize_refuses_a_non_empty_destination(scratch: Path) -> None:
    dest = scratch / "occupied"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(CorpusError, match="not empty"):
        materialize("good", dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_python_m_tests_corpus_prints_the_path(scratch: Path) -> None:
    dest = scratch / "cli-app"
    result = subprocess.run(
        [sys.executable, "-m", "tests.corpus", "wrong-task-queue", str(dest), "--no-git"],
        cwd=corpus.REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(dest.resolve())
    assert 'task_queue = "everflow-v2"' in (dest / "everflow" / "worker.py").read_text()
    assert not (dest / ".git").exists()


# --- each case breaks (or keeps working) the way it claims -------------------------------

SETTINGS_PROBE = f"""
from everflow.settings import Settings
s = Settings()
print(repr(s.db_password.get_secret_value() == {HOSTILE!r}), s.db_host)
"""


@pytest.mark.parametrize(("name", "loaded"), [("good", True), ("env-file-removed", False)])
def test_env_file_removal_drops_every_dotenv_value(
    name: str, loaded: bool, apps: dict[str, Path]
) -> None:
    app = apps[name]
    escaped = HOSTILE.replace("\\", "\\\\").replace('"', '\\"')
    (app / ".env").write_text(f'DB_HOST="db.staging"\nDB_PASSWORD="{escaped}"\n')
    try:
        result = run_in(app, SETTINGS_PROBE)
    finally:
        (app / ".env").unlink()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == (["True", "db.staging"] if loaded else ["False", "localhost"])


DSN_PROBE = f"""
from psycopg.conninfo import conninfo_to_dict
from everflow.settings import Settings
url = Settings(db_host="127.0.0.1", db_password={HOSTILE!r}).database_url
try:
    print("password ok" if conninfo_to_dict(url)["password"] == {HOSTILE!r} else "password wrong")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_unescaped_dsn_breaks_on_a_hostile_password(apps: dict[str, Path]) -> None:
    good = run_in(apps["good"], DSN_PROBE)
    assert good.stdout.strip() == "password ok", good.stderr
    broken = run_in(apps["password-not-escaped"], DSN_PROBE)
    assert broken.returncode == 0, broken.stderr
    assert broken.stdout.startswith("ProgrammingError")
    assert "percent-encoded" in broken.stdout


SANDBOX_PROBE = """
import asyncio
import temporalio.workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from everflow.workflows import PipelineWorkflow

async def main() -> None:
    # What Worker() does for each workflow before it polls.
    defn = temporalio.workflow._Definition.must_from_class(PipelineWorkflow)
    try:
        SandboxedWorkflowRunner().prepare_workflow(defn)
    except Exception as exc:
        print("rejected", type(exc).__name__, exc)
    else:
        print("accepted")

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        ("good", "accepted"),
        ("sandbox-structlog", "rejected"),
        ("sandbox-fixed-unsandboxed", "rejected"),
    ],
)
def test_temporal_sandbox_verdict_on_the_workflow_module(
    name: str, verdict: str, apps: dict[str, Path]
) -> None:
    # sandbox-fixed-unsandboxed keeps the bad import: it passes only because its worker
    # opts out of the sandbox (checked in the content test above).
    result = run_in(apps[name], SANDBOX_PROBE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == verdict, result.stdout + result.stderr
    if verdict == "rejected":
        assert "RestrictedWorkflowAccessError" in result.stdout
        assert "random.getrandbits" in result.stdout


def test_fixture_has_the_rows_notify_flood_announces(apps: dict[str, Path]) -> None:
    result = run_in(
        apps["notify-flood"],
        "from everflow.activities import aggregate, read_fixture\n"
        "print(len(aggregate(read_fixture()).rejected))",
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 1  # one notification per rejected row: a flood


# --- the app's own unit tests ------------------------------------------------------------


def test_the_app_passes_its_own_unit_tests(scratch: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "examples/everflow/tests",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:benchmark",  # pytest-benchmark, where installed, makes a .benchmarks/ dir
            "--basetemp",
            str(scratch / "app-pytest"),
        ],
        cwd=corpus.REPO,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    assert " failed" not in result.stdout
