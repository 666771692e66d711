"""The preflight's rules: what each finding means, worded as a `Diagnosis`.

`staging.preflight.analyse` decides which rule fires (first match wins, see its module
docstring); each rule here states the cause, the narrowest fix and the evidence. Also the
`Channel` staging delivered the settings through and the `Context` the rules read.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

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

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


_HUMAN_CHANNEL = re.compile(
    r"^(?:(?P<dotenv>dotenv file )|(?P<secrets>secrets dir )|(?P<environ>environment variables))"
    r"(?P<path>.*?)/?(?: \(\d+ (?:variables?|files?)\))?$"
)


@dataclass(frozen=True)
class Channel:
    """How staging delivered the settings.

    Accepts the compact form (`"dotenv:.env"`, `"environ"`, `"secrets_dir:run/s"`) and the
    workspace's human description (`"dotenv file .env (12 variables)"`,
    `"environment variables (3 variables)"`, `"secrets dir run/s/ (3 files)"`).
    """

    mode: str  # dotenv | environ | secrets_dir | other
    path: str = ""
    text: str = ""

    @classmethod
    def parse(cls, channel: str) -> Channel:
        human = _HUMAN_CHANNEL.match(channel.strip())
        if human:
            path = human["path"].strip()
            if human["dotenv"]:
                return cls("dotenv", path or ".env")
            if human["secrets"]:
                return cls("secrets_dir", path)
            return cls("environ")
        mode, _, path = channel.partition(":")
        mode = {"env": "environ", "environment": "environ", "secrets": "secrets_dir"}.get(
            mode.strip().lower(), mode.strip().lower()
        )
        if mode == "dotenv":
            return cls(mode, path or ".env")
        if mode in ("environ", "secrets_dir"):
            return cls(mode, path)
        return cls("other", "", channel)

    @property
    def phrase(self) -> str:
        if self.mode == "dotenv":
            return f"the dotenv file {self.path}"
        if self.mode == "environ":
            return "environment variables"
        if self.mode == "secrets_dir":
            return f"the secrets dir {self.path}" if self.path else "the secrets dir"
        return self.text


@dataclass(frozen=True)
class Context:
    report: ProbeReport
    cls: str  # "pkg.module:Settings"
    short: str  # "Settings"
    channel: Channel
    delivered: Mapping[str, str]
    config: ModelConfigReport

    def delivered_for(self, f: FieldReport) -> list[str]:
        """Delivered variables the field reads, by the class's own env-name rules."""
        names = f.env_names or (self.config.env_prefix + f.name,)
        delim = self.config.env_nested_delimiter
        fold = (lambda s: s) if self.config.case_sensitive else str.lower
        wanted = [fold(n) for n in names]
        return [
            var
            for var in self.delivered
            if any(
                fold(var) == n or (delim and fold(var).startswith(n + fold(delim))) for n in wanted
            )
        ]

    def near_misses(self, f: FieldReport) -> list[str]:
        """Delivered variables that look meant for the field but are not names it reads."""
        leaf = f.name.rsplit(".", 1)[-1].lower()
        stems = {leaf, *(a.lower() for a in f.aliases)}
        return [v for v in self.delivered if any(v.lower().endswith(s) for s in stems)]


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
        near = ctx.near_misses(f)
        if near:
            return (
                f"staging delivered {near[0]} through {ch.phrase}, but the field reads {reads} "
                f"(env_prefix={cfg.env_prefix!r})",
                f"name the variable {reads.split(', ')[0]} in [tool.staging.env], or fix "
                f"env_prefix / the field's alias in {short}",
            )
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
    source_name = {"dotenv": "dotenv", "environ": "environment", "secrets_dir": "secrets_dir"}
    wanted = source_name.get(ch.mode)
    if wanted and wanted not in ctx.report.sources:
        arg = {"dotenv": "dotenv_settings", "environ": "env_settings"}.get(ch.mode)
        arg = arg or "file_secret_settings"
        return (
            f"{said}, but {short}.settings_customise_sources does not return {arg}, "
            f"so {ch.phrase} {'are' if ch.mode == 'environ' else 'is'} never read",
            f"return {arg} from {short}.settings_customise_sources "
            "(or deliver settings the way production does)",
        )
    if ch.mode == "dotenv":
        norm = {os.path.normpath(p) for p in cfg.env_files}
        if not cfg.env_files:
            return (
                f"{said}, but {short}.model_config has no env_file, so {ch.path} is never read",
                f'restore env_file="{ch.path}" in {short}.model_config (or deliver settings '
                "the way production does: [tool.staging.settings] delivery)",
            )
        if os.path.normpath(ch.path) not in norm:
            return (
                f"{said}, but {short}.model_config env_file={cfg.env_file!r} does not "
                f"include {ch.path}",
                f'point env_file at "{ch.path}" or set [tool.staging.settings] path = '
                f'"{cfg.env_files[0]}"',
            )
    if ch.mode == "secrets_dir" and ch.path:
        norm = {os.path.normpath(p) for p in cfg.secrets_dirs}
        if not cfg.secrets_dirs:
            return (
                f"{said}, but {short}.model_config has no secrets_dir, so {ch.path} is never read",
                f'set secrets_dir="{ch.path}" in {short}.model_config (or deliver settings the '
                "way production does)",
            )
        if os.path.normpath(ch.path) not in norm:
            return (
                f"{said}, but {short}.model_config secrets_dir={cfg.secrets_dir!r} does not "
                f"include {ch.path}",
                f'point secrets_dir at "{ch.path}" or set [tool.staging.settings] path',
            )
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
    var = (first.env_names[0] if first.env_names else first.name).upper()
    inside = ", ".join(sorted({"localhost", "127.0.0.1", *hosts}))
    more = [f.name for f in flagged[1:]]
    tail = f" Also outside: {', '.join(more)}." if more else ""
    return Diagnosis(
        FailureClass.SETTINGS_EGRESS,
        cause=f"{ctx.cls}: field {first.name} points outside the staging environment: {shown}, "
        f"from {_origin(first)}.{tail}",
        hint=f"deliver a staging value for {var} in [tool.staging.env] (a {{capture.NAME}} sink "
        "for webhooks and notifications, {postgres.*} / {temporal.*} for services); "
        "staging never talks to production",
        evidence=(
            *(_field_line(ctx, f) for f in flagged),
            f"inside the staging environment: {inside}",
            *summary,
        ),
    )


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
        cause = f"{ctx.cls} could not be loaded: {error.type}: {error.message}"
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
        evidence += [line for line in error.traceback.splitlines() if line.strip()][-15:]
    if ctx.report.model_config is not None:
        evidence.append(ctx.report.model_config.summary())
    if ctx.report.stderr_tail and not error.traceback:
        evidence += ["app output:", *ctx.report.stderr_tail.splitlines()[-10:]]
    return Diagnosis(FailureClass.SETTINGS_LOAD_ERROR, cause, hint, tuple(evidence))


def _validation_hint(ctx: Context, errors: Sequence[FieldError]) -> str:
    first = errors[0]
    if first.type == "missing":
        f = ctx.report.field(first.loc.split(".")[0])
        if f is not None:
            return _why(ctx, f)[1]
        return f"deliver {first.loc.upper()} through [tool.staging.env]"
    if first.type == "extra_forbidden":
        extras = ", ".join(e.loc for e in errors if e.type == "extra_forbidden")
        return (
            f"{ctx.short} forbids extra inputs and {ctx.channel.phrase} has variables it does not "
            f"declare ({extras}): drop them from [tool.staging.env] or set extra='ignore'"
        )
    f = ctx.report.field(first.loc.split(".")[0])
    kind = f" ({f.annotation})" if f is not None else ""
    return (
        f"fix the value staging delivers for {first.loc.upper()} in [tool.staging.env], "
        f"or the field's type{kind}"
    )
