"""The run is a pipeline of phases: run them in order, stop at the first failure.

STOP: a failed phase ends the run; nothing "tries the next thing". Exceptions become
results (a `StagingError` carries its own diagnosis; anything else is an internal
error with its traceback tail). Teardown always runs — on success, failure, Ctrl-C and
SIGTERM — and the verdict is written before it, so a run that is interrupted still
leaves a record. Exit codes: 0 pass, 1 fail, 2 aborted (config/infrastructure),
130 interrupted by Ctrl-C, 143 by SIGTERM.
"""

from __future__ import annotations

import errno
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from staging.context import RunContext, ServicesDone, WorkspaceDone
from staging.errors import StagingError
from staging.result import Diagnosis, FailureClass, PhaseResult, Status
from staging.services.connect import ServiceLost, lost_diagnosis, lost_services
from staging.services.disk import unwritable, unwritable_errno

Phase = Callable[[RunContext], PhaseResult]


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGINT/SIGTERM so teardown runs before exit."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


@dataclass(frozen=True)
class RunOutcome:
    status: Status
    exit_code: int
    results: list[PhaseResult]
    diagnosis: Diagnosis | None


@contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C: unwind through teardown. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)


def run_phase(ctx: RunContext, name: str, phase: Phase) -> PhaseResult:
    ctx.console.phase_started(name)
    began = time.monotonic()
    try:
        result = phase(ctx)
    except ServiceLost as exc:
        result = PhaseResult.failed(name, exc.diagnosis_at(name, ctx.elapsed()))
    except StagingError as exc:
        result = PhaseResult.failed(name, _redacted(ctx, exc.diagnosis()))
    except KeyboardInterrupt:
        raise
    except OSError as exc:
        unwritable = _unwritable(name, exc)  # (a failed result is falsy: no `or` here)
        result = unwritable if unwritable is not None else _internal_error(ctx, name, exc)
    except Exception as exc:
        result = _internal_error(ctx, name, exc)
    if not result and name not in _BEFORE_SERVICES:
        result = _blame_infrastructure(ctx, name, result)
    result.name = name
    result.started_at = began - ctx.started
    result.duration = time.monotonic() - began
    if result.diagnosis is not None:
        result.diagnosis = _redacted(ctx, result.diagnosis)
    ctx.console.phase_finished(result)
    return result


# Phases that run before (or are) the services' start: nothing there can be "lost".
_BEFORE_SERVICES = frozenset({"config", "services"})


def _blame_infrastructure(ctx: RunContext, name: str, result: PhaseResult) -> PhaseResult:
    """A failure while a service is gone is the environment's, not the app's: say so."""
    services = ctx.get(ServicesDone)
    diagnosis = result.diagnosis
    if services is None or diagnosis is None or ctx.interrupted:
        return result
    if diagnosis.failure_class in (FailureClass.SERVICES_LOST, FailureClass.CONFIG_INVALID):
        return result
    lost = lost_services(services.environment)
    if not lost:
        return result
    seen = (f"first seen as {diagnosis.failure_class.value}: {diagnosis.cause}",)
    return PhaseResult.failed(
        name, lost_diagnosis(lost, name, ctx.elapsed(), seen + diagnosis.evidence[:10])
    )


def unwritable_diagnosis(path: str, exc: OSError) -> Diagnosis:
    """`environment.unwritable`: the path, why, and the free space where it would go."""
    number = unwritable_errno(exc) or exc.errno or errno.EIO
    return unwritable(Path(path), number, "a file of this run").diagnosis()


def _unwritable(name: str, exc: OSError) -> PhaseResult | None:
    if unwritable_errno(exc) is None or not exc.filename:
        return None
    return PhaseResult.failed(name, unwritable_diagnosis(str(exc.filename), exc))


def _internal_error(ctx: RunContext, name: str, exc: Exception) -> PhaseResult:
    tail = traceback.format_exc().strip().splitlines()[-12:]
    where = "between phases" if name == "runner" else f"in the {name} phase"
    return PhaseResult.failed(
        name,
        _redacted(
            ctx,
            Diagnosis(
                failure_class=FailureClass.INTERNAL_ERROR,
                cause=f"staging itself failed {where}: {type(exc).__name__}: {exc}",
                hint="this is a bug in staging; please report it with "
                "the run's logs/ directory attached",
                evidence=tuple(tail),
            ),
        ),
    )


def _redacted(ctx: RunContext, diagnosis: Diagnosis) -> Diagnosis:
    """Secrets masked; paths inside the throwaway workspace shown relative to the app."""
    done = ctx.get(WorkspaceDone)
    prefix = f"{done.workspace.app}/" if done is not None else None

    def clean(text: str) -> str:
        text = ctx.redactor.text(text)
        return text.replace(prefix, "") if prefix else text

    return Diagnosis(
        failure_class=diagnosis.failure_class,
        cause=clean(diagnosis.cause),
        hint=clean(diagnosis.hint),
        evidence=tuple(clean(e) for e in diagnosis.evidence),
    )


def execute(
    ctx: RunContext,
    phases: Iterable[tuple[str, Phase]],
    *,
    finish: Callable[[RunContext, RunOutcome], RunOutcome | None],
    teardown: Callable[[RunContext, RunOutcome], None],
) -> RunOutcome:
    """Run `phases`, then `finish` (verdict + reports), then `teardown`, whatever happens.

    `finish` may return a replacement outcome: a verdict that could not be written turns
    a run into an `environment.unwritable` abort.
    """
    outcome: RunOutcome | None = None
    try:
        with _signals_raise():
            try:
                for name, phase in phases:
                    result = run_phase(ctx, name, phase)
                    ctx.results.append(result)
                    if not result:
                        break
            except KeyboardInterrupt as exc:
                ctx.interrupted = exc.signame if isinstance(exc, Interrupted) else "SIGINT"
                ctx.console.close()
            except Exception as exc:  # staging's own failure between phases: still tear down
                ctx.results.append(_internal_error(ctx, "runner", exc))
            outcome = _outcome(ctx)
            # Ignore a second Ctrl-C while we write the verdict and clean up.
            with _deferred_signals():
                try:
                    outcome = finish(ctx, outcome) or outcome
                finally:
                    teardown(ctx, outcome)
    finally:
        ctx.console.close()
    return outcome


@contextmanager
def _deferred_signals() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)


def _outcome(ctx: RunContext) -> RunOutcome:
    if ctx.interrupted:
        diagnosis = Diagnosis(
            failure_class=FailureClass.INTERRUPTED,
            cause=f"the run was interrupted by {ctx.interrupted}",
            hint="run it again; nothing was left running",
        )
        code = 143 if ctx.interrupted == "SIGTERM" else 130
        return RunOutcome(Status.ABORTED, code, list(ctx.results), diagnosis)
    failed = next((r for r in ctx.results if not r), None)
    if failed is None:
        return RunOutcome(Status.PASSED, 0, list(ctx.results), None)
    code = 2 if failed.status is Status.ABORTED else 1
    return RunOutcome(failed.status, code, list(ctx.results), failed.diagnosis)
