"""SIGKILL, SIGINT and SIGTERM of the harness in each representative phase.

SIGINT / SIGTERM: teardown runs, the verdict says `interrupted`, exit 130 / 143, nothing
left. SIGKILL: nothing can run in the harness; what it left is removed by the next run's
sweep (done here the way the next run does it), and then nothing is left.
"""

from __future__ import annotations

import signal

import pytest

from tests.faults.conftest import Case
from tests.faults.harness import sweep_like_the_next_run

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PHASES = ["services", "preflight", "worker", "pipelines"]
EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=str)
def test_harness_signalled_in_phase(case: Case, phase: str, sig: signal.Signals) -> None:
    run = case.run().start()
    run.wait_phase(phase)
    run.signal(sig)
    code = run.finish()
    assert code == EXPECTED[sig], run.output()
    landed = _landed(run)
    if sig is signal.SIGKILL:
        assert run.failure_class() is None  # nothing could be said
        sweep_like_the_next_run(case.backend, case.state_dir, case.tmp_dir)
    else:
        verdict = run.verdict()
        assert verdict is not None, run.output()
        assert verdict["diagnosis"]["class"] == "interrupted"
        assert verdict["exit_code"] == code
    found = case.leftovers(run)
    klass = "none (no verdict can be written)" if sig is signal.SIGKILL else None
    fault = f"{sig.name} of the harness in {phase}"
    case.record(fault, run, code, found, klass=klass, landed_in=landed)
    assert found == [], found


def _landed(run) -> str:  # type: ignore[no-untyped-def]
    """The phase that was running when the signal arrived (the one after the last done)."""
    from tests.faults.harness import NEXT_PHASE

    done = [p for p in run.finished_phases if p in NEXT_PHASE or p == "checks"]
    return NEXT_PHASE.get(done[-1], "?") if done else "config"
