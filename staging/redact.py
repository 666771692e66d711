"""Keep secrets out of every byte staging writes or prints.

A `Redactor` knows the run's secret values (the generated password, every value of a
secret-like setting) and replaces each with `***` wherever it appears, in any of the forms
it travels in:

- raw, percent-encoded (`quote` with its default `safe` and with `safe=""`, `quote_plus`;
  upper- and lower-case hex digits), hex (both cases), base64 (standard and urlsafe, with
  and without padding, alone or inside a longer base64 text at any of the three byte
  alignments), `repr`, `json.dumps`, SQL literals (`''`), libpq conninfo (`\\'`, `\\\\`),
  HTML escapes (`&#x27;`, `&#39;`, `&quot;`...), `shlex.quote`;
- and, for a secret registered with `fragments=True` (the default), every run of `RUN` or
  more consecutive characters of it, raw or in any of the character-by-character forms
  above: what libpq quotes back from a badly escaped DSN, or a value cut at a line width.

All of it is one regular expression built from a trie of the needles, so a line is scanned
once whatever the number of forms (the README's "What redaction cannot catch" says what is
out of reach). Register secrets as soon as they exist, and the password before any value
built on it; redact everything at the edge (console, logs, reports, verdict).
"""

from __future__ import annotations

import base64
import html
import json
import re
import shlex
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
RUN = 4  # no run of this many consecutive characters of a secret survives redaction
# Longer values (keys, certificates) are masked whole only: their windows would be
# thousands of needles, and a window of a base64 key body matches other base64 by chance.
FRAGMENTS_UP_TO = 64
SECRET_NAME = re.compile(r"(pass(word)?|secret|token|key|dsn|credential)", re.IGNORECASE)
# A URL with userinfo: the password part is always masked, known or not.
_URL_USERINFO = re.compile(
    # Bounded scheme: an unbounded one makes long base64 runs quadratic to scan.
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{0,31}://)(?P<user>[^:@/\s]{0,256}):(?P<pw>[^@\s]{0,512})@"
)
_PCT = re.compile(r"%[0-9A-F]{2}")


def is_secret_name(name: str) -> bool:
    """True for names a human would call secret: password, secret, token, key, dsn..."""
    return bool(SECRET_NAME.search(name))


def _lower_pct(text: str) -> str:
    return _PCT.sub(lambda m: m.group(0).lower(), text)


def _repr_single(text: str) -> str:
    # What repr() writes between its quotes when the value holds both quote characters
    # (or neither): `'` is escaped. Appending both forces that mode for a fragment too.
    return repr(text + "'\"")[1:-4]


def _repr_double(text: str) -> str:
    # repr() of a value holding `'` but no `"`: double quotes, `'` left alone.
    return repr(text + "'")[1:-2] if '"' not in text else _repr_single(text)


# Encodings that work character by character: enc(a + b) == enc(a) + enc(b). A run of a
# secret's characters therefore shows up encoded as the encoding of that run, so the
# windows of a secret can be registered in each of them.
_BY_CHARACTER: tuple[Callable[[str], str], ...] = (
    lambda s: s,
    lambda s: quote(s, safe=""),
    lambda s: _lower_pct(quote(s, safe="")),
    quote,  # its default safe="/" keeps slashes
    lambda s: _lower_pct(quote(s)),
    quote_plus,
    lambda s: _lower_pct(quote_plus(s)),
    lambda s: s.encode().hex(),
    lambda s: s.encode().hex().upper(),
    lambda s: json.dumps(s)[1:-1],
    lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    _repr_single,
    _repr_double,
    lambda s: s.replace("'", "''"),  # SQL string literal
    lambda s: s.replace("\\", "\\\\").replace("'", "\\'"),  # libpq conninfo value
    lambda s: s.replace("\\", "\\\\").replace('"', '\\"'),  # C-like / TOML / shell "..."
    lambda s: s.replace("'", "'\"'\"'"),  # inside shlex.quote's quotes
    html.escape,
    lambda s: html.escape(s, quote=False),
    lambda s: html.escape(s).replace("&#x27;", "&#39;").replace("&quot;", "&#34;"),  # Jinja
)


def _base64_forms(secret: str) -> set[str]:
    """The secret's base64 text alone and inside a longer base64 text.

    Inside a longer text the secret's bytes start at offset 0, 1 or 2 of a 3-byte group;
    skipping 0, 2 or 1 of its bytes, every whole group after that encodes to the same
    characters whatever surrounds it. At most 2 bytes at each edge stay visible, mixed into
    characters that also encode foreign bits.
    """
    raw = secret.encode()
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        forms |= {whole, whole.rstrip("=")}
        for skip in (0, 1, 2):
            groups = (len(raw) - skip) // 3
            if groups >= 2:  # one group is 4 characters: too short to be told apart
                forms.add(encode(raw[skip : skip + 3 * groups]).decode("ascii"))
    return forms


def whole_forms(secret: str) -> set[str]:
    """Every encoded form of the whole value that `Redactor` masks."""
    forms = {encode(secret) for encode in _BY_CHARACTER}
    forms |= {repr(secret)[1:-1], shlex.quote(secret)}
    forms |= _base64_forms(secret)
    return {f for f in forms if f}


def fragment_forms(secret: str) -> set[str]:
    """Every window of `RUN` characters of the secret, in every character-wise encoding.

    Windows of exactly `RUN`: the pattern repeats them (`+`), so a longer run is masked in
    pieces, and `Redactor` extends a raw run past its last whole piece; longer windows
    would triple the pattern (and its compile time) for nothing.
    """
    forms: set[str] = set()
    for start in range(len(secret) - RUN + 1):
        window = secret[start : start + RUN]
        forms |= {encode(window) for encode in _BY_CHARACTER}
    return {f for f in forms if f}


def _trie_pattern(needles: Iterable[str]) -> str:
    """One regex matching any needle, longest first: a trie, so each position of the text
    costs one character test per branch instead of one `in` per needle."""
    root: dict[str, Any] = {}
    for needle in needles:
        node = root
        for char in needle:
            node = node.setdefault(char, {})
        node[""] = {}  # the end of a needle
    return _emit(root)


def _emit(node: dict[str, Any]) -> str:
    branches = [_emit_branch(char, child) for char, child in node.items() if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:  # a needle ends here: the longer ones are optional, tried first (greedy)
        return f"(?:{body})?"
    return body


def _emit_branch(char: str, node: dict[str, Any]) -> str:
    # Runs of single-child nodes are written in a loop: recursing once per character
    # would overflow the stack on a long value's hex form.
    chars = [char]
    while len(node) == 1 and "" not in node:
        ((char, node),) = node.items()
        chars.append(char)
    return re.escape("".join(chars)) + _emit(node)


def _mask(pattern: re.Pattern[str], runs: tuple[str, ...], text: str) -> str:
    """`pattern.sub(MASK, text)`, each raw run of a secret masked up to its end (the pattern
    takes it in pieces of `RUN` and would leave up to `RUN - 1` characters)."""
    pieces: list[str] = []
    done = 0
    for match in pattern.finditer(text):
        start, end = match.span()
        if end <= done:  # already inside the previous, extended mask
            continue
        start = max(start, done)
        while end < len(text) and any(text[start : end + 1] in secret for secret in runs):
            end += 1
        if start > done or not pieces or pieces[-1] != MASK:
            pieces.append(text[done:start])
            pieces.append(MASK)
        done = end
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


class Redactor:
    """Thread-safe; shared by every phase of a run."""

    def __init__(
        self, secrets: Iterable[str] = (), *, scrubbers: Iterable[Callable[[str], str]] = ()
    ) -> None:
        self._lock = threading.Lock()
        self._whole: set[str] = set()
        self._fragments: set[str] = set()
        self._runs: set[str] = set()  # secrets whose raw runs are masked to their end
        self._pattern: re.Pattern[str] | None = None
        self._scrubbers = tuple(scrubbers)
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None, *, fragments: bool = True) -> None:
        """Mask `secret` from now on.

        With `fragments`, every run of `RUN`+ of its characters is masked too, unless the
        value holds a secret already registered (a DSN built around the password): its other
        characters (scheme, host, port) are public, and masking their runs would blank out
        every "postgresql://" and "127.0.0.1" of the logs. Values longer than
        `FRAGMENTS_UP_TO` are masked whole only.
        """
        # Very short values ("", "1") would mask half the output and protect nothing.
        if not secret or len(secret) < RUN:
            return
        whole = whole_forms(secret)
        with self._lock:
            composite = any(known in secret for known in self._whole)
            wanted = fragments and not composite and len(secret) <= FRAGMENTS_UP_TO
            parts = fragment_forms(secret) if wanted else set()
            if whole <= self._whole and parts <= self._fragments:
                return
            self._whole |= whole
            self._fragments |= parts
            if parts:
                self._runs.add(secret)
            self._pattern = None  # rebuilt on next use: several adds compile once

    def extended(self, secrets: Iterable[str]) -> Redactor:
        """A copy that also masks `secrets` (this one is left as it is)."""
        clone = Redactor(scrubbers=self._scrubbers)
        with self._lock:
            clone._whole = set(self._whole)
            clone._fragments = set(self._fragments)
            clone._runs = set(self._runs)
        for secret in secrets:
            clone.add(secret)
        return clone

    @property
    def secrets(self) -> tuple[str, ...]:
        """The whole forms of every secret, longest first, for plain substring checks.

        Not the `RUN`-character fragments: a recorded history (base64 payloads, ids) would
        hit one of those by chance far more often than it holds a real piece of a secret.
        """
        with self._lock:
            return tuple(sorted(self._whole, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        return self.text(text)

    def _compiled(self) -> tuple[re.Pattern[str] | None, tuple[str, ...]]:
        with self._lock:
            if self._pattern is None and self._whole:
                # `+`: adjacent pieces of a long run become one mask, not `******`.
                pattern = _trie_pattern(self._whole | self._fragments)
                self._pattern = re.compile(f"(?:{pattern})+")
            return self._pattern, tuple(self._runs)

    def text(self, text: str) -> str:
        pattern, runs = self._compiled()
        if pattern is not None:
            text = _mask(pattern, runs, text)
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
