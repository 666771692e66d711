"""Two runs of the same app at once: both pass, each on its own services, nothing left."""

from __future__ import annotations

import pytest

from tests.faults.conftest import Case

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_two_concurrent_runs_both_pass(case: Case) -> None:
    first, second = case.run(), case.run()
    first.start()
    first.inject(lambda: None)
    second.start()
    codes = [first.finish(), second.finish()]
    second.injected_at = first.injected_at
    found = case.leftovers(first) + case.leftovers(second)
    case.record("two concurrent runs", second, max(codes), found, klass="both pass")
    assert codes == [0, 0], first.output() + "\n----\n" + second.output()
    assert set(first.ports).isdisjoint(second.ports)
    assert found == [], found
