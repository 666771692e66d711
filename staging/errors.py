"""One root error type. Every error states what was expected, what was seen, and a hint.

Phases may raise a `StagingError`; the runner turns it into a failed `PhaseResult`
carrying `error.diagnosis()`. Messages never contain secret values: callers pass
values through `staging.redact` before building evidence.
"""

from __future__ import annotations

from collections.abc import Iterable

from staging.result import Diagnosis, FailureClass


class StagingError(Exception):
    failure_class: FailureClass = FailureClass.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        hint: str,
        expected: str | None = None,
        observed: str | None = None,
        evidence: Iterable[str] = (),
        failure_class: FailureClass | None = None,
    ) -> None:
        self.message = message
        self.hint = hint
        self.expected = expected
        self.observed = observed
        self.evidence = tuple(evidence)
        if failure_class is not None:
            self.failure_class = failure_class
        super().__init__(self.render())

    def render(self) -> str:
        lines = [self.message]
        if self.expected is not None:
            lines.append(f"  expected: {self.expected}")
        if self.observed is not None:
            lines.append(f"  observed: {self.observed}")
        lines.append(f"Hint: {self.hint}")
        return "\n".join(lines)

    def diagnosis(self) -> Diagnosis:
        cause = self.message
        if self.expected is not None or self.observed is not None:
            cause += f" (expected {self.expected}; observed {self.observed})"
        return Diagnosis(
            failure_class=self.failure_class,
            cause=cause,
            hint=self.hint,
            evidence=self.evidence,
        )


class ConfigError(StagingError):
    """`[tool.staging]` is wrong. The message names the key and the file."""

    failure_class = FailureClass.CONFIG_INVALID


class ServiceUnavailable(StagingError):
    """No Docker engine, an image missing and not pullable, a binary missing, a port clash."""

    failure_class = FailureClass.SERVICES_UNAVAILABLE


class MissingDependency(StagingError):
    failure_class = FailureClass.SERVICES_UNAVAILABLE

    def __init__(self, module: str, extra_or_package: str) -> None:
        super().__init__(
            f"the optional dependency {module!r} is not installed",
            hint=f"pip install '{extra_or_package}'",
        )
