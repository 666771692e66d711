"""Phase 5: the app's own preparation commands (migrations), in the workspace."""

from __future__ import annotations

from staging.context import ConfigDone, RunContext, WorkspaceDone
from staging.db_errors import is_db_auth_failure
from staging.evidence import build_evidence, headline_for_cause
from staging.preflight import credentials_phrase
from staging.result import Diagnosis, FailureClass, PhaseResult
from staging.traps import find_trap


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def setup_phase(ctx: RunContext) -> PhaseResult:
    config, workspace = ctx.need(ConfigDone), ctx.need(WorkspaceDone)
    steps = config.loaded.config.setup
    if not steps:
        return PhaseResult.skipped("setup", "no [[tool.staging.setup]] steps")
    done: list[str] = []
    for step in steps:
        proc = ctx.spawn(f"setup-{_slug(step.name)}", step.command, role="setup", cwd=step.cwd)
        code = proc.wait(timeout=min(step.timeout, max(1.0, ctx.remaining())))
        if code is None:
            proc.stop(grace=2)
        ctx.reap(proc)
        output = proc.output(2000)
        if code == 0:
            done.append(step.name)
            continue
        log = config.logs_dir / f"setup-{_slug(step.name)}.log"
        # The exception line decides; a plain tail of the output can cut it off.
        evidence = build_evidence(output, root=str(workspace.workspace.app), log=str(log))
        shown = " ".join(step.command)
        if code is None:
            cause = f"setup step {step.name!r} ({shown}) did not finish in {step.timeout:g}s"
        else:
            cause = f"setup step {step.name!r} ({shown}) failed with exit code {code}"
        cause += headline_for_cause(output)
        trap = find_trap(output)
        if trap is not None:
            cause += f"; {trap.cause}"
        if is_db_auth_failure(output):
            return PhaseResult.failed(
                "setup",
                Diagnosis(
                    FailureClass.DB_AUTH_FAILED,
                    cause + ": Postgres rejected the app's credentials",
                    hint=trap.hint
                    if trap
                    else "the app connected with a user/password that is not the one staging "
                    f"delivered; check {credentials_phrase(ctx.probe, workspace.rendered_env)} "
                    "and how the DSN is built (escaping)",
                    evidence=evidence,
                ),
            )
        return PhaseResult.failed(
            "setup",
            Diagnosis(
                FailureClass.SETUP_FAILED,
                cause,
                hint=f"{trap.hint}; full output in {log}"
                if trap
                else f"run it by hand against `staging up` to reproduce; full output in {log}",
                evidence=evidence,
            ),
        )
    return PhaseResult.passed("setup", summary=", ".join(done), steps=done)
