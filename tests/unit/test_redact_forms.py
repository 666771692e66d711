"""Redaction, proven: every form of a run-like password is masked, and no run of `RUN`
consecutive characters of it survives, over 1000 generated passwords.

One Redactor per generated password checks every form (building one costs ~4 ms: a test
per form would cost minutes). Deterministic (`derandomize`), so CI sees the same 1000.
"""

from __future__ import annotations

import base64
import html
import json
import shlex
import string
from collections.abc import Callable
from urllib.parse import quote, quote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from staging.redact import _BY_CHARACTER, MASK, RUN, Redactor
from staging.services.password import HOSTILE, LENGTH

_SAFE = string.ascii_letters + string.digits
EXAMPLES = 1000
PROPERTY = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


@st.composite
def passwords(draw: st.DrawFn) -> str:
    """Shaped like `generate_password`: every hostile character, letters and digits,
    shuffled, a safe character at each end; the run's length and a few others.

    Built from one drawn `Random` (a few choices for hypothesis to track, not ~50)."""
    rng = draw(st.randoms(use_true_random=False))
    length = rng.choice([LENGTH, LENGTH, LENGTH, 12, 16, 32])
    safe = [rng.choice(_SAFE) for _ in range(length - len(HOSTILE))]
    middle = [*HOSTILE, *safe[2:]]
    rng.shuffle(middle)
    return safe[0] + "".join(middle) + safe[1]


def _lower_pct(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "%":
            out.append(text[i : i + 3].lower())
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# Every form the issue lists, as the tools produce it, quotes included where they add them.
FORMS: dict[str, Callable[[str], str]] = {
    "raw": lambda p: p,
    "quote(safe='')": lambda p: quote(p, safe=""),
    "quote(safe='') lower": lambda p: _lower_pct(quote(p, safe="")),
    "quote()": quote,
    "quote() lower": lambda p: _lower_pct(quote(p)),
    "quote_plus": quote_plus,
    "quote_plus lower": lambda p: _lower_pct(quote_plus(p)),
    "b64": lambda p: base64.b64encode(p.encode()).decode(),
    "b64 unpadded": lambda p: base64.b64encode(p.encode()).decode().rstrip("="),
    "b64 urlsafe": lambda p: base64.urlsafe_b64encode(p.encode()).decode(),
    "b64 urlsafe unpadded": lambda p: base64.urlsafe_b64encode(p.encode()).decode().rstrip("="),
    "hex": lambda p: p.encode().hex(),
    "HEX": lambda p: p.encode().hex().upper(),
    "repr": repr,
    "json.dumps": json.dumps,
    "sql literal": lambda p: "'" + p.replace("'", "''") + "'",
    "libpq conninfo": lambda p: "password='" + p.replace("\\", "\\\\").replace("'", "\\'") + "'",
    "html.escape": html.escape,
    "html.escape(quote=False)": lambda p: html.escape(p, quote=False),
    "jinja escape": lambda p: html.escape(p).replace("&#x27;", "&#39;").replace("&quot;", "&#34;"),
    "shlex.quote": shlex.quote,
}


def _encoded_windows(secret: str) -> set[str]:
    """Every window of `RUN` characters of the secret, raw and in each character-wise form."""
    windows = {secret[i : i + RUN] for i in range(len(secret) - RUN + 1)}
    return {enc(w) for w in windows for enc in _BY_CHARACTER} - {""}


@PROPERTY
@given(passwords(), st.data())
def test_every_form_and_every_fragment_is_masked(password: str, data: st.DataObject) -> None:
    redact = Redactor([password])
    windows = _encoded_windows(password)

    def leaks(out: str) -> list[str]:
        return sorted(w for w in windows if w in out)

    for name, form in FORMS.items():
        # "(" and ")" are in no form's alphabet: the mask must cover the form exactly.
        out = redact(f"before({form(password)})after")
        if name in ("repr", "json.dumps", "sql literal", "libpq conninfo", "shlex.quote"):
            assert MASK in out and not leaks(out), (name, password, out)  # quotes stay
        else:
            assert out == f"before({MASK})after", (name, password, out)

    # A piece of it, as libpq quotes back from a DSN that broke at an unescaped character,
    # in every character-wise form: nothing of RUN or more characters survives.
    start = data.draw(st.integers(0, len(password) - RUN), label="start")
    end = data.draw(st.integers(start + RUN, len(password)), label="end")
    for encode in _BY_CHARACTER:
        out = redact(f'invalid port number: "{encode(password[start:end])}"')
        assert not leaks(out), (password, password[start:end], out)

    # Inside a longer base64 text (a payload), at each of the three byte alignments.
    before = data.draw(st.binary(max_size=5), label="before")
    after = data.draw(st.binary(max_size=5), label="after")
    for encode64 in (base64.b64encode, base64.urlsafe_b64encode):
        blob = encode64(before + password.encode() + after).decode()
        out = redact(f"data={blob};")
        assert out.count(MASK) == 1, (password, blob, out)
        left, _, right = out.removeprefix("data=").removesuffix(";").partition(MASK)
        # Bytes whose 8 bits are all in the visible characters (6 bits each): at most 2 of
        # the secret's on each side.
        first, last = len(before), len(before) + len(password.encode())
        visible_left = min((6 * len(left)) // 8, last) - first
        visible_right = last - max(-(-6 * (len(blob) - len(right)) // 8), first)
        assert visible_left <= 2 and visible_right <= 2, (password, blob, out)
