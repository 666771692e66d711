"""Settings preflight: judge what the settings probe saw in the app's interpreter.

`run_probe` (from `staging.probes`) runs `settings_probe.py` with the app's python, in the
workspace, under the hermetic environment the app gets. `analyse` turns its report into at
most one `Diagnosis`, first match wins:

1. `settings.load_error`: the class failed to import or validate.
2. `config.invalid`: `[tool.staging.settings] optional` names a field the class lacks (a
   typo there would otherwise turn into a wrong "secret missing").
3. A variable staging delivered that no field took (the `env_file` incident, judged by
   delivery, whatever the field is called): `settings.secret_missing` when it carries a
   secret (secret-like field or name, a URL with credentials), else `settings.ignored`. The
   cause names the variable, the field, the channel and why: no env_file, a wrong env_file
   path, a prefix, delimiter, case or alias mismatch, sources that skip the channel.
4. `settings.secret_missing` for a delivered secret-like field left empty.
5. `settings.egress`: a URL or host that points outside the staging environment.
6. `settings.secret_missing` for a secret-like or required field staging never delivered
   (by name: staging cannot judge by delivery what it did not deliver). A field whose type
   admits None with a None default, or listed in `optional`, is not missing.
7. `config.invalid`: `[tool.staging.settings] required` names a field the class lacks.

The probe redacts values itself; everything put into a Diagnosis passes the redactor too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from staging import preflight_rules as rules
from staging.preflight_names import Names, carries_credentials, fields_named
from staging.preflight_rules import Context
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
from staging.workspace.delivery import DeliveryStrategy, strategy_for

__all__ = [
    "DotenvReport",
    "FieldError",
    "FieldReport",
    "ModelConfigReport",
    "ProbeError",
    "ProbeReport",
    "analyse",
    "credentials_phrase",
    "describe_channel",
    "provenance_table",
    "run_probe",
]


# A type that admits None: `X | None`, `Optional[X]`, `Union[X, None]`.
_NULLABLE = re.compile(r"\bNone\b|\bOptional\[")


def describe_channel(delivery: str, path: str) -> DeliveryStrategy:
    """The `channel` argument of `analyse` for `[tool.staging.settings]` delivery + path."""
    return strategy_for(delivery, path)


def analyse(
    report: ProbeReport,
    *,
    settings_class: str,
    required: Sequence[str],
    delivered: Mapping[str, str],
    channel: DeliveryStrategy | str,
    staging_hosts: Collection[str],
    redactor: Redactor,
    optional: Sequence[str] = (),
    config_file: str = "pyproject.toml",
) -> Diagnosis | None:
    """One diagnosis for the preflight phase, or None when the settings are fit to run.

    `channel` is the delivery strategy staging used (`Delivery.strategy`); a string is the
    compact `"mode:path"` form of `[tool.staging.settings]` (`"dotenv:.env"`, `"environ"`).
    """
    # Values staging delivered under secret-like names are secrets even if nobody registered them.
    local = redactor.extended(v for k, v in delivered.items() if is_secret_name(k))
    config = report.model_config or ModelConfigReport()
    short = settings_class.rpartition(":")[2] or settings_class
    if isinstance(channel, str):
        mode, _, path = channel.partition(":")
        channel = strategy_for(mode, path or (".env" if mode == "dotenv" else ""))
    ctx = Context(report, settings_class, short, channel, delivered, config)
    diagnosis = _diagnose(ctx, required, optional, staging_hosts, config_file)
    if diagnosis is None:
        return None
    return Diagnosis(
        failure_class=diagnosis.failure_class,
        cause=local.text(diagnosis.cause),
        hint=local.text(diagnosis.hint),
        evidence=tuple(local.text(e) for e in diagnosis.evidence),
    )


def _diagnose(
    ctx: Context,
    required: Sequence[str],
    optional: Sequence[str],
    hosts: Collection[str],
    config_file: str,
) -> Diagnosis | None:
    report = ctx.report
    if not report.ok or report.model_config is None:
        return rules.load_error(ctx)
    summary = [ctx.config.summary(), f"sources in priority order: {', '.join(report.sources)}"]
    summary += [f"probe warning: {w}" for w in report.warnings]
    exempt, unknown_optional = fields_named(report, optional)
    if unknown_optional:
        return _unknown_names(ctx, "optional", unknown_optional, config_file, summary)
    wanted, unknown_required = fields_named(report, required)
    suspects = _suspects(ctx, wanted, exempt)
    egress = [f for f in report.fields if rules.points_outside(f, hosts)]
    lost = ctx.names.lost()
    if lost:
        return rules.delivery_lost(ctx, lost, [*suspects, *egress], summary)
    delivered = [f for f in suspects if ctx.delivered_for(f)]
    if delivered:
        return rules.secret_missing(ctx, delivered, [*delivered, *egress], summary)
    if egress:
        return rules.egress(ctx, egress, hosts, summary)
    if suspects:
        return rules.secret_missing(ctx, suspects, suspects, summary)
    if unknown_required:
        return _unknown_names(ctx, "required", unknown_required, config_file, summary)
    return None


def _suspects(ctx: Context, wanted: set[str], exempt: set[str]) -> list[FieldReport]:
    """Secret-like or required fields left at their default or empty, secrets first."""
    by_name = {f.name: f for f in ctx.report.fields}
    suspects: list[FieldReport] = []
    for f in ctx.report.fields:
        if _parent_unset(f, by_name) or f.name in exempt:
            continue
        secret = f.is_secret or is_secret_name(f.name.rsplit(".", 1)[-1])
        if not (secret or f.name in wanted) or not (f.source == "default" or f.empty):
            continue
        if f.name not in wanted and _optional_by_type(f) and not ctx.delivered_for(f):
            continue
        suspects.append(f)
    # A missing password is the headline, a defaulted host the supporting cast.
    suspects.sort(key=lambda f: not (f.is_secret or is_secret_name(f.name)))
    return suspects


def _optional_by_type(f: FieldReport) -> bool:
    """`api_key: SecretStr | None = None`, unset: optional by the app's own declaration."""
    return f.value is None and f.default == "None" and bool(_NULLABLE.search(f.annotation))


def _unknown_names(
    ctx: Context, key: str, unknown: list[str], config_file: str, summary: list[str]
) -> Diagnosis:
    return Diagnosis(
        FailureClass.CONFIG_INVALID,
        cause=f"{config_file}: [tool.staging.settings] {key} names {', '.join(unknown)}, "
        f"but {ctx.cls} has no such field",
        hint=f"use field names (or their environment variable names) of {ctx.short} in "
        f"[tool.staging.settings] {key}: {', '.join(f.name for f in ctx.report.fields)}",
        evidence=tuple(summary),
    )


def _parent_unset(f: FieldReport, by_name: Mapping[str, FieldReport]) -> bool:
    # A nested model that is None as a whole has no password to miss.
    parts = f.name.split(".")
    for i in range(1, len(parts)):
        parent = by_name.get(".".join(parts[:i]))
        if parent is not None and parent.value is None:
            return True
    return False


def credentials_phrase(report: ProbeReport | None, delivered: Mapping[str, str]) -> str:
    """How the app reads its database credentials, in its own names, for a hint.

    "how Settings reads DATABASE_URL (field database_url)" for an app with one DSN,
    "... DB_PASSWORD (field db_password)" for one with parts; generic without a probe.
    """
    if report is None or not report.fields:
        return "how the app's settings class reads the database password"
    names = Names(report, report.model_config or ModelConfigReport(), delivered)
    hits: dict[str, str] = {}
    for var, value in delivered.items():
        for f in names.readers(var):
            if "pass" in f.name.lower() or carries_credentials(value):
                hits.setdefault(var, f.name)
    if not hits:
        return "how the app's settings class reads the database password"
    short = report.settings_class.rpartition(":")[2] or "the settings class"
    read = ", ".join(f"{var} (field {name})" for var, name in hits.items())
    return f"how {short} reads {read}"


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
