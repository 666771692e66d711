"""Settings preflight: judge what the settings probe saw in the app's interpreter.

`run_probe` (from `staging.probes`) runs `settings_probe.py` with the app's python, in the
workspace, under the hermetic environment the app gets. `analyse` turns its report into at
most one `Diagnosis`, first match wins:

1. `settings.load_error`: the class failed to import or validate.
2. `settings.secret_missing` for a field staging delivered but the class did not take (the
   `env_file` incident: the cause names the field, its source, the delivered variable, the
   channel and the model config that explains why).
3. `settings.egress`: a URL or host that points outside the staging environment.
4. `settings.secret_missing` for a secret-like or required field staging never delivered.
5. `config.invalid`: `[tool.staging.settings] required` names a field the class lacks.

The probe redacts values itself; everything put into a Diagnosis passes the redactor too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from staging import preflight_rules as rules
from staging.preflight_rules import Channel, Context
from staging.probes import (
    DotenvReport,
    FieldError,
    FieldReport,
    ModelConfigReport,
    ProbeError,
    ProbeReport,
    run_probe,
)
from staging.redact import Redactor, is_secret_name
from staging.result import Diagnosis, FailureClass

__all__ = [
    "Channel",
    "DotenvReport",
    "FieldError",
    "FieldReport",
    "ModelConfigReport",
    "ProbeError",
    "ProbeReport",
    "analyse",
    "describe_channel",
    "provenance_table",
    "run_probe",
]


def describe_channel(delivery: str, path: str) -> str:
    """The `channel` argument of `analyse` for `[tool.staging.settings]` delivery + path."""
    return delivery if delivery == "environ" else f"{delivery}:{path}"


def analyse(
    report: ProbeReport,
    *,
    settings_class: str,
    required: Sequence[str],
    delivered: Mapping[str, str],
    channel: str,
    staging_hosts: Collection[str],
    redactor: Redactor,
) -> Diagnosis | None:
    """One diagnosis for the preflight phase, or None when the settings are fit to run."""
    # Values staging delivered under secret-like names are secrets even if nobody registered them.
    local = redactor.extended(v for k, v in delivered.items() if is_secret_name(k))
    config = report.model_config or ModelConfigReport()
    short = settings_class.rpartition(":")[2] or settings_class
    ctx = Context(report, settings_class, short, Channel.parse(channel), delivered, config)
    diagnosis = _diagnose(ctx, required, staging_hosts)
    if diagnosis is None:
        return None
    return Diagnosis(
        failure_class=diagnosis.failure_class,
        cause=local.text(diagnosis.cause),
        hint=local.text(diagnosis.hint),
        evidence=tuple(local.text(e) for e in diagnosis.evidence),
    )


def _diagnose(ctx: Context, required: Sequence[str], hosts: Collection[str]) -> Diagnosis | None:
    report = ctx.report
    if not report.ok or report.model_config is None:
        return rules.load_error(ctx)
    by_name = {f.name: f for f in report.fields}
    wanted = {r.strip().lower() for r in required if r.strip()}
    matched: set[str] = set()
    suspects: list[FieldReport] = []
    for f in report.fields:
        keys = {f.name.lower(), *(a.lower() for a in f.aliases), *(n.lower() for n in f.env_names)}
        matched |= wanted & keys
        if _parent_unset(f, by_name):
            continue
        critical = f.is_secret or is_secret_name(f.name.rsplit(".", 1)[-1]) or bool(wanted & keys)
        if critical and (f.source == "default" or f.empty):
            suspects.append(f)
    # Secrets first: a missing password is the headline, a defaulted host the supporting cast.
    suspects.sort(key=lambda f: not (f.is_secret or is_secret_name(f.name)))
    lost = [f for f in suspects if ctx.delivered_for(f)]
    egress = [f for f in report.fields if rules.points_outside(f, hosts)]
    summary = [ctx.config.summary(), f"sources in priority order: {', '.join(report.sources)}"]
    summary += [f"probe warning: {w}" for w in report.warnings]
    if lost:
        # Non-critical fields that also lost their delivered value make the cause obvious.
        ignored = [f for f in report.fields if f.source == "default" and ctx.delivered_for(f)]
        return rules.secret_missing(ctx, lost, [*lost, *suspects, *ignored, *egress], summary)
    if egress:
        return rules.egress(ctx, egress, hosts, summary)
    if suspects:
        return rules.secret_missing(ctx, suspects, suspects, summary)
    unknown = sorted(wanted - matched)
    if unknown:
        return Diagnosis(
            FailureClass.CONFIG_INVALID,
            cause=f"[tool.staging.settings] required names {', '.join(unknown)}, "
            f"but {ctx.cls} has no such field",
            hint="use field names (or their environment variable names) of "
            f"{ctx.short}: {', '.join(f.name for f in report.fields)}",
            evidence=tuple(summary),
        )
    return None


def _parent_unset(f: FieldReport, by_name: Mapping[str, FieldReport]) -> bool:
    # A nested model that is None as a whole has no password to miss.
    parts = f.name.split(".")
    for i in range(1, len(parts)):
        parent = by_name.get(".".join(parts[:i]))
        if parent is not None and parent.value is None:
            return True
    return False


def provenance_table(report: ProbeReport) -> list[dict[str, str]]:
    """One row per field for the console and the report; values are already redacted."""
    rows = []
    for f in report.fields:
        value = "(empty)" if f.value == "" else "None" if f.value is None else f.value
        rows.append(
            {
                "field": f.name,
                "source": f.source,
                "value": value,
                "secret": "yes" if f.is_secret else "no",
                "detail": f.source_detail,
            }
        )
    return rows
