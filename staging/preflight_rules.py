"""The preflight's rules: what each finding means, worded as a `Diagnosis`.

`staging.preflight.analyse` decides which rule fires (first match wins, see its module
docstring); each rule here states the cause, the narrowest fix and the evidence, in the
app's own names: its fields and the variables they read. The `Context` carries the delivery
strategy staging used (a structured object, never a display string to re-parse).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from staging.evidence import build_evidence
from staging.preflight_names import Cause, Names, Reading
from staging.probes import (
    DotenvReport,
    FieldError,
    FieldReport,
    ModelConfigReport,
    ProbeError,
    ProbeReport,
)
from staging.redact import is_secret_name
from staging.result import Diagnosis, FailureClass
from staging.workspace.delivery import DeliveryStrategy, Unread

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class Context:
    report: ProbeReport
    cls: str  # "pkg.module:Settings"
    short: str  # "Settings"
    channel: DeliveryStrategy
    delivered: Mapping[str, str]
    config: ModelConfigReport

    @property
    def names(self) -> Names:
        return Names(self.report, self.config, self.delivered)

    def delivered_for(self, f: FieldReport) -> list[str]:
        """Delivered variables the field reads, by the class's own env-name rules."""
        return self.names.delivered_for(f)

    def unread(self) -> Unread | None:
        """Why the class never reads the channel staging used, or None when it does."""
        ch = self.channel
        if ch.source not in self.report.sources:
            verb = "are" if ch.mode == "environ" else "is"
            return Unread(
                f"{self.short}.settings_customise_sources does not return {ch.source_arg}, "
                f"so {ch.phrase} {verb} never read",
                f"return {ch.source_arg} from {self.short}.settings_customise_sources "
                "(or deliver settings the way production does)",
            )
        return ch.unread(self.short, self.config)


def _origin(f: FieldReport) -> str:
    if f.source == "default":
        return "its default"
    detail = f" ({f.source_detail})" if f.source_detail else ""
    return f"the {f.source} source{detail}"


def _shown(f: FieldReport) -> str:
    if f.empty:
        return "empty" if f.value in ("", None) else f"empty: {f.value}"
    return "'***'" if f.is_secret else repr(f.value)


def secret_missing(
    ctx: Context, flagged: list[FieldReport], listed: list[FieldReport], summary: list[str]
) -> Diagnosis:
    """`settings.secret_missing`, headed by `flagged[0]`; `listed` become evidence."""
    first = flagged[0]
    kind = "secret-like" if first.is_secret or is_secret_name(first.name) else "required"
    head = (
        f"{ctx.cls}: field {first.name} ({kind}) resolved from {_origin(first)} ({_shown(first)})"
    )
    why, hint = _why(ctx, first)
    more = [f.name for f in flagged[1:]]
    tail = f" The same holds for {', '.join(more)}." if more else ""
    evidence = [_field_line(ctx, f) for f in dict.fromkeys(listed)]
    evidence += summary + [_dotenv_line(d) for d in ctx.report.dotenv]
    return Diagnosis(
        FailureClass.SETTINGS_SECRET_MISSING, f"{head}: {why}.{tail}", hint, tuple(evidence)
    )


def _why(ctx: Context, f: FieldReport) -> tuple[str, str]:
    """Why a field staging delivered did not arrive, and the narrowest fix."""
    ch, cfg, short = ctx.channel, ctx.config, ctx.short
    delivered = ctx.delivered_for(f)
    reads = ", ".join(n.upper() if not cfg.case_sensitive else n for n in f.env_names) or f.name
    if not delivered:
        # A delivered variable meant for it would have been judged first (`delivery_lost`).
        return (
            f"staging delivers nothing for it (no [tool.staging.env] variable named {reads})",
            f'add {reads.split(", ")[0]} = "..." to [tool.staging.env] so the run gets a value '
            "the way production does",
        )
    var = delivered[0]
    said = f"staging delivered {var} through {ch.phrase}"
    if ctx.delivered[var] == "":
        return f"{said}, but with an empty value", f"give {var} a value in [tool.staging.env]"
    if f.source != "default":
        return (
            f"{said}, but {_origin(f)} supplies an empty value and takes precedence",
            f"remove the empty value ({f.source_detail or f.source}) or reorder "
            f"{short}.settings_customise_sources",
        )
    unread = ctx.unread()
    if unread is not None:
        return f"{said}, but {unread.cause}", unread.hint
    return (
        f"{said}, yet the field did not take it (it reads {reads}; {cfg.summary()})",
        f"check {short}'s env_prefix, aliases and settings_customise_sources against {var}",
    )


def _field_line(ctx: Context, f: FieldReport) -> str:
    delivered = ctx.delivered_for(f)
    sent = f"; staging delivered {', '.join(delivered)}" if delivered else "; not delivered"
    secret = " (secret)" if f.is_secret else ""
    where = f" [{f.source_detail}]" if f.source_detail else ""
    target = f"; points at {_hostport(f)}" if f.host else ""
    return f"{f.name}{secret}: source={f.source}{where} value={_shown(f)}{target}{sent}"


def _dotenv_line(d: DotenvReport) -> str:
    state = f"defines {', '.join(d.names) or 'nothing'}" if d.exists else "does not exist"
    return f"env_file {d.path}: {state}"


def _hostport(f: FieldReport) -> str:
    host = f"[{f.host}]" if f.host and ":" in f.host else str(f.host)
    return f"{host}:{f.port}" if f.port is not None else host


def points_outside(f: FieldReport, hosts: Collection[str]) -> bool:
    """The field has a host, and it is neither loopback nor one of the staging `hosts`."""
    if f.empty or not f.host:
        return False
    host = f.host.strip("[]").lower().rstrip(".")
    inside = {h.strip("[]").lower().rstrip(".") for h in hosts}
    if host in inside or host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_unspecified)


def egress(
    ctx: Context, flagged: list[FieldReport], hosts: Collection[str], summary: list[str]
) -> Diagnosis:
    """`settings.egress` for the fields that point outside, headed by `flagged[0]`."""
    first = flagged[0]
    shown = _hostport(first) if first.is_secret else f"{first.value} (host {_hostport(first)})"
    inside = ", ".join(sorted({"localhost", "127.0.0.1", *hosts}))
    more = [f.name for f in flagged[1:]]
    tail = f" Also outside: {', '.join(more)}." if more else ""
    why, hint = _egress_why(ctx, first)
    return Diagnosis(
        FailureClass.SETTINGS_EGRESS,
        cause=f"{ctx.cls}: field {first.name} points outside the staging environment: {shown}, "
        f"from {_origin(first)}{why}.{tail}",
        hint=hint,
        evidence=(
            *(_field_line(ctx, f) for f in flagged),
            f"inside the staging environment: {inside}",
            *summary,
        ),
    )


_STAGING_VALUES = (
    "a {capture.NAME} sink for webhooks and notifications, {postgres.*} / {temporal.*} for services"
)


def _egress_why(ctx: Context, f: FieldReport) -> tuple[str, str]:
    """Why the field holds an outside value (when staging knows) and the fix; never "deliver
    X" for an X that staging delivered."""
    delivered = ctx.delivered_for(f)
    if not delivered:
        var = ctx.names.shown(f.env_names[0] if f.env_names else f.name)
        return "", (
            f"deliver a staging value for {var} in [tool.staging.env] ({_STAGING_VALUES}); "
            "staging never talks to production"
        )
    var = delivered[0]
    said = f"staging delivered {var} through {ctx.channel.phrase}"
    if f.source == "default":
        unread = ctx.unread()
        cause = unread.cause if unread is not None else "the field did not take it"
        return (
            f": {said}, but {cause}, so the default (which points outside) is used",
            unread.hint if unread is not None else f"check how {ctx.short} reads {var}",
        )
    if f.source != ctx.channel.source:
        return (
            f": {said}, but the {f.source} source takes precedence",
            f"stop the {f.source} source from overriding {var} in {ctx.short} "
            "(settings_customise_sources), or remove the value it holds",
        )
    return (
        f": the value is the one staging delivered for {var}",
        f"render {var} in [tool.staging.env] from a staging value ({_STAGING_VALUES}) "
        "instead of a literal production address",
    )


def delivery_lost(
    ctx: Context, lost: list[Reading], listed: list[FieldReport], summary: list[str]
) -> Diagnosis:
    """A delivered variable no field took: `settings.secret_missing` when it carries a secret,
    else `settings.ignored`. Headed by `lost[0]`; `listed` fields become evidence too."""
    first = lost[0]
    f = first.field
    why, hint = _lost_why(ctx, first)
    if f is not None and f.source == "default":
        kind = (
            " (secret-like)"
            if f.is_secret or is_secret_name(f.name.rsplit(".", 1)[-1])
            else " (a URL carrying credentials)"
            if first.secret
            else ""
        )
        head = f"{ctx.cls}: field {f.name}{kind} resolved from its default ({_shown(f)}): {why}"
    else:
        head = f"{ctx.cls}: {why}"
    # One line each in the evidence; the cause stays one paragraph.
    more = [r.variable for r in lost[1:]]
    tail = f" The same holds for {', '.join(more)}." if more else ""
    alike = sum(1 for r in lost[1:] if r.cause is first.cause and r.field is not None)
    if alike and first.cause not in (Cause.CHANNEL, Cause.NO_FIELD):
        hint += f"; the same for the {alike} other variable{'s' if alike > 1 else ''} listed"
    fields = [r.field for r in lost if r.field is not None]
    evidence = [_lost_line(ctx, r) for r in lost]
    evidence += [_field_line(ctx, x) for x in dict.fromkeys(listed) if x not in fields]
    evidence += summary + [_dotenv_line(d) for d in ctx.report.dotenv]
    kind_of = (
        FailureClass.SETTINGS_SECRET_MISSING if first.secret else FailureClass.SETTINGS_IGNORED
    )
    return Diagnosis(kind_of, f"{head}.{tail}", hint, tuple(evidence))


def _lost_line(ctx: Context, r: Reading) -> str:
    line = f"{r.variable}: delivered through {ctx.channel.phrase}; {_fate(r)}"
    if r.field is None:
        return line
    target = f", points at {_hostport(r.field)}" if r.field.host else ""
    return f"{line} (source={r.field.source} value={_shown(r.field)}{target})"


def _fate(r: Reading) -> str:
    if r.field is None:
        return "no field reads it"
    if r.cause is Cause.CHANNEL:
        return f"field {r.field.name} reads it but resolved from its default"
    return f"meant for field {r.field.name}, which reads {r.reads or 'no flat variable'}"


def _lost_why(ctx: Context, r: Reading) -> tuple[str, str]:
    """Why a delivered variable was not taken, and the narrowest fix, in the app's names."""
    why, hint = _lost_reason(ctx, r)
    unread = ctx.unread() if r.cause is not Cause.CHANNEL else None
    if unread is not None:  # a second fault: the name will not help while the channel is unread
        return f"{why}; also, {unread.cause}", f"{hint}; and {unread.hint}"
    return why, hint


def _lost_reason(ctx: Context, r: Reading) -> tuple[str, str]:
    var, f, short, cfg = r.variable, r.field, ctx.short, ctx.config
    said = f"staging delivered {var} through {ctx.channel.phrase}"
    if f is None:
        return (
            f"{said}, but no field of {short} reads it",
            f"remove {var} from [tool.staging.env], or add the field of {short} that should "
            "read it; a variable the app reads outside its settings class belongs in "
            "[tool.staging.process_env]",
        )
    if r.cause is Cause.CHANNEL:
        unread = ctx.unread()
        if unread is not None:
            return f"{said}, but {unread.cause}", unread.hint
        return (
            f"{said}, yet field {f.name} did not take it ({cfg.summary()})",
            f"check {short}.settings_customise_sources against {var}",
        )
    rename = f"rename {var} to {r.reads} in [tool.staging.env]"
    if r.cause is Cause.DELIMITER and not r.reads:
        return (
            f"{said}, but {short}.model_config has no env_nested_delimiter, so no single "
            f"variable reaches the nested field {f.name} (a delimiter mismatch)",
            f'set env_nested_delimiter="__" in {short}.model_config and deliver the nested '
            f"field under that name, as production must",
        )
    reason = {
        Cause.PREFIX: f"field {f.name} reads {r.reads} (env_prefix={cfg.env_prefix!r}): "
        "a prefix mismatch",
        Cause.DELIMITER: f"the nested field {f.name} reads {r.reads} "
        f"(env_nested_delimiter={cfg.env_nested_delimiter!r}): a delimiter mismatch",
        Cause.CASE: f"{short} is case_sensitive and field {f.name} reads {r.reads}: "
        "the case differs",
        Cause.ALIAS: f"field {f.name} reads {r.reads} through its alias, not {var}",
    }.get(r.cause, f"field {f.name} reads {r.reads}")
    fix = {
        Cause.PREFIX: f"{rename} (or fix env_prefix in {short}.model_config)",
        Cause.ALIAS: f"{rename}: the alias is the name production must deliver too",
    }.get(r.cause, f"{rename}, the name {short} reads")
    return f"{said}, but {reason}", fix


def load_error(ctx: Context) -> Diagnosis:
    """`settings.load_error`: the class failed to import or validate."""
    error = ctx.report.error or ProbeError("Unknown", "the probe reported failure without error")
    evidence: list[str] = [f"{e.loc}: {e.msg} [{e.type}]" for e in error.errors]
    if error.errors:
        fields = ", ".join(dict.fromkeys(e.loc for e in error.errors))
        cause = f"{ctx.cls} failed to validate ({fields}): " + "; ".join(
            f"{e.loc}: {e.msg}" for e in error.errors[:3]
        )
        hint = _validation_hint(ctx, error.errors)
    else:
        # The probe's message may already start with the type ("AttributeError: ...").
        message = error.message.removeprefix(f"{error.type}: ")
        cause = f"{ctx.cls} could not be loaded: {error.type}: {message}"
        module = ctx.cls.partition(":")[0]
        hint = {
            "ProbeTimeout": f"importing {module} or constructing {ctx.short}() hangs; run it by "
            "hand in the app dir",
            "ProbeNotStarted": "check [tool.staging] python: the interpreter could not be started",
        }.get(
            error.type,
            f"reproduce in the app dir with the configured python: "
            f"python -c 'from {module} import {ctx.short}; {ctx.short}()'",
        )
        evidence += build_evidence(error.traceback) if error.traceback.strip() else ()
    if ctx.report.model_config is not None:
        evidence.append(ctx.report.model_config.summary())
    if ctx.report.stderr_tail and not error.traceback:
        evidence += ["app output:", *ctx.report.stderr_tail.splitlines()[-10:]]
    return Diagnosis(FailureClass.SETTINGS_LOAD_ERROR, cause, hint, tuple(evidence))


def _validation_hint(ctx: Context, errors: Sequence[FieldError]) -> str:
    first = errors[0]
    f = _field_at(ctx, first.loc)
    if first.type == "missing":
        if f is None:
            return f"deliver {_variable_for(ctx, first.loc)} through [tool.staging.env]"
        lost = [r for r in ctx.names.lost() if r.field == f]
        return _lost_why(ctx, lost[0])[1] if lost else _why(ctx, f)[1]
    if first.type == "extra_forbidden":
        extras = ", ".join(_variable_for(ctx, e.loc) for e in errors if e.type == "extra_forbidden")
        return (
            f"{ctx.short} forbids extra inputs and {ctx.channel.phrase} has variables it does not "
            f"declare ({extras}): drop them from [tool.staging.env] or set extra='ignore'"
        )
    kind = f" ({f.annotation})" if f is not None else ""
    var = _variable_for(ctx, first.loc, f)
    return (
        f"fix the value staging delivers for {var} in [tool.staging.env], or the field's type{kind}"
    )


def _field_at(ctx: Context, loc: str) -> FieldReport | None:
    """The field a validation error's location names (by field name or alias)."""
    head = loc.split(".")[0].lower()
    return next(
        (
            f
            for f in ctx.report.fields
            if "." not in f.name and head in {f.name.lower(), *(a.lower() for a in f.aliases)}
        ),
        None,
    )


def _variable_for(ctx: Context, loc: str, f: FieldReport | None = None) -> str:
    """The variable behind an error location, in the app's names: the delivered one if any."""
    if f is not None:
        delivered = ctx.delivered_for(f)
        if delivered:
            return delivered[0]
        if f.env_names:
            return ctx.names.shown(f.env_names[0])
    head = loc.split(".")[0].lower()
    prefix = ctx.config.env_prefix.lower()
    for var in ctx.delivered:
        if var.lower() in (head, prefix + head):
            return var
    return ctx.names.shown(ctx.config.env_prefix + loc.split(".")[0])
