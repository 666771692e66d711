"""Phase 5: the app's own preparation commands (migrations), in the workspace."""

from __future__ import annotations

from staging.context import RunContext
from staging.db_errors import is_db_auth_failure
from staging.result import Diagnosis, FailureClass, PhaseResult


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def setup_phase(ctx: RunContext) -> PhaseResult:
    assert ctx.loaded is not None and ctx.workspace is not None
    steps = ctx.loaded.config.setup
    if not steps:
        return PhaseResult.skipped("setup", "no [[tool.staging.setup]] steps")
    done: list[str] = []
    for step in steps:
        proc = ctx.spawn(f"setup-{_slug(step.name)}", step.command, role="setup")
        code = proc.wait(timeout=min(step.timeout, max(1.0, ctx.remaining())))
        if code is None:
            proc.stop(grace=2)
        ctx.reap(proc)
        output = proc.output()
        if code == 0:
            done.append(step.name)
            continue
        evidence = tuple(output.splitlines()[-15:])
        shown = " ".join(step.command)
        if code is None:
            cause = f"setup step {step.name!r} ({shown}) did not finish in {step.timeout:g}s"
        else:
            cause = f"setup step {step.name!r} ({shown}) exited with code {code}"
        if is_db_auth_failure(output):
            return PhaseResult.failed(
                "setup",
                Diagnosis(
                    FailureClass.DB_AUTH_FAILED,
                    cause + ": Postgres rejected the app's credentials",
                    hint="the app connected with a user/password that is not the one staging "
                    "delivered; check how the settings class reads DB_PASSWORD and how the "
                    "DSN is built (escaping)",
                    evidence=evidence,
                ),
            )
        return PhaseResult.failed(
            "setup",
            Diagnosis(
                FailureClass.SETUP_FAILED,
                cause,
                hint=f"run it by hand against `staging up` to reproduce; full output in "
                f"{ctx.logs_dir / f'setup-{_slug(step.name)}.log'}",
                evidence=evidence,
            ),
        )
    return PhaseResult.passed("setup", summary=", ".join(done), steps=done)
