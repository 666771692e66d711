"""Which field read each variable staging delivered, and why one that was ignored missed.

The probe reports, per field, the environment names pydantic-settings itself derives for it
(env_prefix, `alias` / `validation_alias` / `AliasChoices`, case sensitivity, and
`parent<delimiter>child` for nested models; for a custom source, the environment variables
the probe found it reading) and the source its value came from. A delivered
variable is *consumed* when a field that reads that name took a value from a source. One
that is not consumed is the incident, whatever the field is called; `Reading.cause` says
which of the usual reasons it is, so that the message can name the field, the variable the
field reads instead, and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from staging.probes import FieldReport, ModelConfigReport, ProbeReport
from staging.redact import is_secret_name

_BUILTIN_SOURCES = frozenset({"default", "init", "environment", "dotenv", "secrets_dir"})
# A URL whose userinfo has a non-empty password: a DSN carrying credentials.
_CREDENTIALS_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,31}://[^@/\s]*:[^@\s]+@")


class Cause(Enum):
    CHANNEL = "channel"  # the field reads the name, but its source never saw the channel
    PREFIX = "prefix"  # the name lacks (or has another) env_prefix
    DELIMITER = "delimiter"  # a nested field, reached with another (or no) nested delimiter
    CASE = "case"  # case_sensitive=True and the case differs
    ALIAS = "alias"  # the field reads its alias, not its own name
    NAME = "name"  # looks meant for a field that reads another name
    NO_FIELD = "no field"  # nothing in the class resembles it


@dataclass(frozen=True)
class Reading:
    """What became of one delivered variable that no field consumed."""

    variable: str
    field: FieldReport | None  # the field that reads it, or the one it was evidently meant for
    cause: Cause
    reads: str = ""  # the name the field reads instead (for the name mismatches)
    secret: bool = False

    @property
    def meant(self) -> str:
        return self.field.name if self.field is not None else ""


class Names:
    """The delivered variables against the fields' own environment names."""

    def __init__(
        self, report: ProbeReport, config: ModelConfigReport, delivered: Mapping[str, str]
    ) -> None:
        self.report = report
        self.config = config
        self.delivered = delivered
        fold: Callable[[str], str] = (lambda s: s) if config.case_sensitive else str.lower
        self.fold = fold

    def shown(self, name: str) -> str:
        """A name as the user writes it in [tool.staging.env]."""
        return name if self.config.case_sensitive else name.upper()

    def _names(self, f: FieldReport) -> list[str]:
        if f.env_names:
            return [self.fold(n) for n in f.env_names]
        return [] if "." in f.name else [self.fold(self.config.env_prefix + f.name)]

    def readers(self, var: str) -> list[FieldReport]:
        """Fields that read `var`: exact names first, then parents it reaches by delimiter."""
        low = self.fold(var)
        exact = [f for f in self.report.fields if low in self._names(f)]
        delim = self.config.env_nested_delimiter
        if exact or not delim:
            return exact
        return [
            f
            for f in self.report.fields
            if any(low.startswith(n + self.fold(delim)) for n in self._names(f))
        ]

    def delivered_for(self, f: FieldReport) -> list[str]:
        """Delivered variables the field reads, by the class's own env-name rules."""
        return [var for var in self.delivered if f in self.readers(var)]

    def lost(self) -> list[Reading]:
        """Every delivered variable no field took, secrets first, in delivery order."""
        out = []
        # A custom source may read a variable under a name no field declares; staging cannot
        # tell which, so only a variable that resembles a field's own name is judged then.
        custom = any(f.source not in _BUILTIN_SOURCES for f in self.report.fields)
        for var in self.delivered:
            readers = self.readers(var)
            if readers and any(f.source != "default" for f in readers):
                continue
            reading = Reading(var, readers[-1], Cause.CHANNEL) if readers else self._near_miss(var)
            if custom and reading.cause is Cause.NO_FIELD:
                continue
            secret = self.is_secret(var, reading.field)
            out.append(
                Reading(reading.variable, reading.field, reading.cause, reading.reads, secret)
            )
        return sorted(out, key=lambda r: not r.secret)

    def is_secret(self, var: str, f: FieldReport | None) -> bool:
        """Secret-like field or name, or a URL/DSN value carrying credentials."""
        by_field = f is not None and (f.is_secret or is_secret_name(f.name.rsplit(".", 1)[-1]))
        value = self.delivered.get(var, "")
        return by_field or is_secret_name(var) or carries_credentials(value)

    def _near_miss(self, var: str) -> Reading:
        low = var.lower()
        for finder in (self._case, self._alias, self._delimiter, self._prefix, self._suffix):
            hit = finder(low)
            if hit is not None:
                cause, f, reads = hit
                return Reading(var, f, cause, self.shown(reads))
        return Reading(var, None, Cause.NO_FIELD)

    def _case(self, low: str) -> tuple[Cause, FieldReport, str] | None:
        if not self.config.case_sensitive:
            return None
        for f in self.report.fields:
            for name in f.env_names:
                if name.lower() == low:
                    return Cause.CASE, f, name
        return None

    def _alias(self, low: str) -> tuple[Cause, FieldReport, str] | None:
        prefix = self.config.env_prefix.lower()
        for f in self.report.fields:
            if f.aliases and f.env_names and low in (f.name.lower(), prefix + f.name.lower()):
                return Cause.ALIAS, f, f.env_names[0]
        return None

    def _delimiter(self, low: str) -> tuple[Cause, FieldReport, str] | None:
        squeezed = _squeeze(low)
        for f in self.report.fields:
            if "." not in f.name:
                continue
            names = f.env_names or [self._joined(f)]
            for name in names:
                if name and _squeeze(name) == squeezed:
                    return Cause.DELIMITER, f, name if f.env_names else ""
        return None

    def _joined(self, f: FieldReport) -> str:
        """The flat name a nested field would have with "_" joining the parts."""
        parent = self.report.field(f.name.rsplit(".", 1)[0])
        if parent is None:
            return ""
        stem = self._names(parent)[0] if self._names(parent) else parent.name
        return f"{stem}_{f.name.rsplit('.', 1)[-1]}".lower()

    def _prefix(self, low: str) -> tuple[Cause, FieldReport, str] | None:
        prefix = self.config.env_prefix.lower()
        for f in self.report.fields:
            if "." in f.name or f.aliases:
                continue
            bare = f.name.lower()
            if low == bare and prefix:
                return Cause.PREFIX, f, f.env_names[0] if f.env_names else prefix + bare
            if low.endswith("_" + bare) and low != prefix + bare:
                return Cause.PREFIX, f, f.env_names[0] if f.env_names else prefix + bare
        return None

    def _suffix(self, low: str) -> tuple[Cause, FieldReport, str] | None:
        for f in self.report.fields:
            stems = {f.name.rsplit(".", 1)[-1].lower(), *(a.lower() for a in f.aliases)}
            if f.env_names and any(low.endswith(s) for s in stems):
                return Cause.NAME, f, f.env_names[0]
        return None


def carries_credentials(value: str) -> bool:
    """A URL/DSN with a password in its userinfo."""
    return bool(_CREDENTIALS_URL.match(value.strip()))


def _squeeze(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def fields_named(report: ProbeReport, names: Sequence[str]) -> tuple[set[str], list[str]]:
    """The report's fields matched by `names` (field, alias or env names), and the unknowns."""
    wanted = {n.strip().lower(): n.strip() for n in names if n.strip()}
    matched: set[str] = set()
    fields: set[str] = set()
    for f in report.fields:
        keys = {f.name.lower(), *(a.lower() for a in f.aliases), *(n.lower() for n in f.env_names)}
        hit = keys & set(wanted)
        if hit:
            matched |= hit
            fields.add(f.name)
    return fields, [wanted[k] for k in wanted if k not in matched]
