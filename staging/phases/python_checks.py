"""Checks written in Python: the app's `tests = [...]`, run by pytest against the live run.

They run at the end of the checks phase, after the pipelines and the SQL checks, in the
app's interpreter, in the workspace, with the hermetic environment plus one variable that
tells staging's pytest plugin to attach its fixtures to this run's services instead of
starting its own. Each test becomes a check of the verdict (listed with the first
pipeline's checks, so junit.xml and the report show it); the first failing test makes the
phase `check.failed`, naming the test and its assertion message.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from staging.atomic import write_json
from staging.context import ConfigDone, PipelineRecord, RunContext, ServicesDone, WorkspaceDone
from staging.pytest_plugin.attach import Attach
from staging.result import Diagnosis, FailureClass, PhaseResult
from staging.workspace import resolve_command

_MESSAGE_LINES = 12
_OUTPUT_TAIL = 25


@dataclass(frozen=True)
class TestOutcome:
    nodeid: str
    passed: bool
    skipped: bool
    message: str  # the assertion message / error, redacted; "" when it passed


def run_python_checks(ctx: RunContext, records: list[PipelineRecord]) -> PhaseResult | None:
    """None when every Python check passed (or none is configured); else the failed phase."""
    config = ctx.need(ConfigDone)
    paths = list(config.loaded.config.tests)
    if not paths:
        return None
    out_dir = config.run_dir / "python-checks"
    out_dir.mkdir(parents=True, exist_ok=True)
    junit = out_dir / "pytest.xml"
    junit.unlink(missing_ok=True)
    command = resolve_command(
        [
            "python",
            "-m",
            "pytest",
            *paths,
            # The entry point's name blocked, the module given: loaded exactly once, even
            # by an interpreter that does not have staging installed (see _plugin_path).
            "-p",
            "no:staging",
            "-p",
            "staging.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-o",
            "junit_family=xunit1",
            f"--junitxml={junit}",
            "-q",
            "-rfE",
        ],
        config.loaded.python,
    )
    env, shimmed = _environment(ctx, out_dir)
    output, code = _run(ctx, command, env, use_forkserver=not shimmed)
    outcomes = read_junit(junit, ctx.redactor.text) if junit.exists() else []
    if records:
        records[0].checks.extend(
            {"check": o.nodeid, "value": _value(o), "ok": o.passed or o.skipped} for o in outcomes
        )
    failed = next((o for o in outcomes if not (o.passed or o.skipped)), None)
    if failed is not None:
        return _failed(failed, outcomes)
    if code != 0 or not outcomes:
        return _no_results(paths, code, ctx.redactor.text(output))
    return None


def _value(outcome: TestOutcome) -> str:
    if outcome.passed:
        return "passed"
    return "skipped" if outcome.skipped else f"failed: {outcome.message.splitlines()[0]}"


def _environment(ctx: RunContext, out_dir: Path) -> tuple[dict[str, str], bool]:
    loaded, services = ctx.need(ConfigDone).loaded, ctx.need(ServicesDone)
    done = ctx.need(WorkspaceDone)
    env, captures = services.environment, services.captures
    captured = out_dir / "captured.json"
    notifications = captures.to_json()
    write_json(captured, ctx.redactor.value(notifications))
    attach = Attach(
        postgres=dataclasses.asdict(env.postgres),
        temporal=env.temporal.to_dict(),  # JSON-safe: TLS material, the API key
        backend=env.backend_name,
        run_id=ctx.run_id,
        captured_file=str(captured),
        captured_urls={n: captures.url(n) for n in captures.names},
        settings=ctx.probe.to_dict() if ctx.probe is not None else {},
        workers=[
            {"name": cfg.name, "task_queue": cfg.task_queue, "pid": proc.pid}
            for cfg, proc in zip(loaded.config.workers, ctx.workers, strict=False)
        ],
        app_dir=str(done.workspace.app),
    )
    merged = {**done.app_env, **attach.to_env()}
    shim = _plugin_path(loaded.python, out_dir)
    if shim is not None:
        current = merged.get("PYTHONPATH", "")
        merged["PYTHONPATH"] = os.pathsep.join(p for p in (current, str(shim)) if p)
    return merged, shim is not None


def _plugin_path(python: str, out_dir: Path) -> Path | None:
    """A dir holding only `staging`, for an app interpreter that is not the harness's own.

    Last on PYTHONPATH, so an installed staging wins; never the harness's whole source
    root, which may hold packages (tests/, examples/) that would shadow the app's.
    """
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return None
    import staging

    shim = out_dir / "plugin-path"
    shim.mkdir(exist_ok=True)
    link = shim / "staging"
    if not link.exists():
        link.symlink_to(Path(staging.__file__).resolve().parent, target_is_directory=True)
    return shim


def _run(
    ctx: RunContext, command: list[str], env: dict[str, str], *, use_forkserver: bool
) -> tuple[str, int | None]:
    from staging.process import ManagedProcess

    proc = ManagedProcess.start(
        "python-checks",
        command,
        cwd=ctx.need(WorkspaceDone).workspace.app,
        env=env,
        log_path=ctx.logs_dir / "python-checks.log",
        redactor=ctx.redactor,
        forkserver=ctx.forkserver if use_forkserver else None,
    )
    if ctx.app_record is not None:
        ctx.app_record.track(proc, "checks")
    try:
        code = proc.wait(timeout=max(5.0, ctx.remaining()))
        if code is None:
            proc.stop(grace=2.0)
    finally:
        ctx.reap(proc)
    return proc.output(_OUTPUT_TAIL), code


def read_junit(path: Path, redact: Callable[[str], str] = str) -> list[TestOutcome]:
    """Each testcase of pytest's junit XML (xunit1: with its file), in order."""
    root = ET.parse(path).getroot()
    outcomes = []
    for case in root.iter("testcase"):
        where = case.get("file") or (case.get("classname") or "").replace(".", "/") + ".py"
        classname = case.get("classname") or ""
        inner = classname.rsplit(".", 1)[-1]
        prefix = f"{inner}::" if inner and inner[:1].isupper() else ""
        nodeid = f"{where}::{prefix}{case.get('name')}" if classname else str(case.get("name"))
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped") is not None
        message = ""
        if problem is not None:
            message = _message(problem.get("message") or "", problem.text or "")
        outcomes.append(
            TestOutcome(nodeid, problem is None and not skipped, skipped, redact(message))
        )
    return outcomes


def _message(message: str, text: str) -> str:
    """The assertion message, then pytest's explanation lines (`E   ...`) of the failure."""
    explained = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    lines = [line.strip() for line in message.splitlines()] + explained
    unique = list(dict.fromkeys(line for line in lines if line))
    return "\n".join(unique[:_MESSAGE_LINES]) or "the test failed without a message"


def _failed(failed: TestOutcome, outcomes: list[TestOutcome]) -> PhaseResult:
    bad = [o for o in outcomes if not (o.passed or o.skipped)]
    first_line = failed.message.splitlines()[0]
    others = f" ({len(bad) - 1} more Python check(s) failed)" if len(bad) > 1 else ""
    return PhaseResult.failed(
        "checks",
        Diagnosis(
            FailureClass.CHECK_FAILED,
            f"Python check `{failed.nodeid}` failed: {first_line}{others}",
            hint="the pipeline reported success but the test's expectation on the live "
            f"environment does not hold; run it against a kept environment with "
            f"`staging run --keep-on-failure`, then `pytest {failed.nodeid}`",
            evidence=(failed.nodeid, *failed.message.splitlines(), *(o.nodeid for o in bad[1:])),
        ),
        python_checks=[dataclasses.asdict(o) for o in outcomes],
    )


def _no_results(paths: list[str], code: int | None, output: str) -> PhaseResult:
    """pytest ran no test, or ended badly without saying which test (usage, import, timeout)."""
    tail = tuple(output.strip().splitlines()[-_OUTPUT_TAIL:])
    if "No module named pytest" in output:
        hint = "install pytest into the app's interpreter (its requirements), or remove `tests`"
    elif code is None:
        hint = "the Python checks did not finish within the run's timeout; raise `timeout`"
    else:
        hint = (
            "check the `tests` paths of [tool.staging] (relative to the app dir) and that "
            "pytest collects tests from them; the output is in logs/python-checks.log"
        )
    observed = "it did not finish in time" if code is None else f"pytest exited {code}"
    return PhaseResult.failed(
        "checks",
        Diagnosis(
            FailureClass.CHECK_FAILED,
            f"the Python checks {', '.join(paths)} gave no test results "
            f"(expected each test passed or failed; observed: {observed})",
            hint=hint,
            evidence=tail,
        ),
    )
