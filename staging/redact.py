"""Keep secrets out of every byte staging writes or prints.

A `Redactor` knows the run's secret values (the generated password, every value of a
secret-like setting) and the encodings they travel in (raw, percent-escaped, JSON- and
shell-quoted), and replaces each with `***`. Register secrets as soon as they exist;
redact everything at the edge (console, logs, reports, verdict).
"""

from __future__ import annotations

import json
import re
import shlex
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
SECRET_NAME = re.compile(r"(pass(word)?|secret|token|key|dsn|credential)", re.IGNORECASE)
# A URL with userinfo: the password part is always masked, known or not.
_URL_USERINFO = re.compile(
    # Bounded scheme: an unbounded one makes long base64 runs quadratic to scan.
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{0,31}://)(?P<user>[^:@/\s]{0,256}):(?P<pw>[^@\s]{0,512})@"
)


def is_secret_name(name: str) -> bool:
    """True for names a human would call secret: password, secret, token, key, dsn..."""
    return bool(SECRET_NAME.search(name))


_FRAGMENT = 8  # a run of this many characters of a long secret is masked on its own


def _variants(secret: str) -> set[str]:
    variants = {secret, quote(secret, safe=""), quote_plus(secret), shlex.quote(secret)}
    variants.add(json.dumps(secret)[1:-1])
    variants.add(secret.replace("\\", "\\\\").replace('"', '\\"'))
    # libpq and URL parsers quote back *pieces* of a badly escaped DSN ("rd% #'x@..."):
    # mask every long enough run of a long secret, not only the whole value.
    if len(secret) >= 2 * _FRAGMENT:
        for size in range(_FRAGMENT, len(secret)):
            variants.update(secret[i : i + size] for i in range(len(secret) - size + 1))
    return {v for v in variants if v}


class Redactor:
    """Thread-safe; shared by every phase of a run."""

    def __init__(
        self, secrets: Iterable[str] = (), *, scrubbers: Iterable[Callable[[str], str]] = ()
    ) -> None:
        self._lock = threading.Lock()
        self._needles: list[str] = []
        self._scrubbers = tuple(scrubbers)
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        # Very short values ("", "1") would mask half the output and protect nothing.
        if not secret or len(secret) < 4:
            return
        with self._lock:
            merged = set(self._needles) | _variants(secret)
            self._needles = sorted(merged, key=len, reverse=True)

    def extended(self, secrets: Iterable[str]) -> Redactor:
        """A copy that also masks `secrets` (this one is left as it is).

        Not `Redactor(self.secrets)`: the needles already hold every fragment of every
        secret, and expanding each of those again costs O(n^3) (50 ms for one password).
        """
        clone = Redactor(scrubbers=self._scrubbers)
        with self._lock:
            clone._needles = list(self._needles)
        for secret in secrets:
            clone.add(secret)
        return clone

    @property
    def secrets(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._needles)

    def __call__(self, text: str) -> str:
        return self.text(text)

    def text(self, text: str) -> str:
        with self._lock:
            needles = list(self._needles)
        for needle in needles:
            if needle in text:
                text = text.replace(needle, MASK)
        for scrub in self._scrubbers:
            text = scrub(text)
        if "://" not in text:
            return text
        return _URL_USERINFO.sub(
            lambda m: f"{m['scheme']}{m['user']}:{MASK}@" if m["pw"] else m.group(0), text
        )

    def value(self, value: Any) -> Any:
        """Redact strings inside any JSON-like structure."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
