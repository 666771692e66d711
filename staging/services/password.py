"""Per-run Postgres passwords that break apps which forget to escape them.

Production passwords rarely contain `@`, `:` or a space, so an app that builds its DSN
with an f-string works there by luck. Staging always uses the hostile characters, so the
escaping bug shows up before deploy, not after a credential rotation.
"""

from __future__ import annotations

import secrets
import string

# Each of these breaks a different layer: URL userinfo (@ : / % #), shell quoting (' " space).
HOSTILE = "@:/%#'\" "
_SAFE = string.ascii_letters + string.digits
LENGTH = 24


def generate_password(length: int = LENGTH) -> str:
    """A fresh random password with every hostile character plus letters and digits."""
    if length < len(HOSTILE) + 2:
        raise ValueError(f"a password needs at least {len(HOSTILE) + 2} characters")
    chars: list[str] = [
        *HOSTILE,
        secrets.choice(string.ascii_letters),
        secrets.choice(string.digits),
    ]
    chars += [secrets.choice(_SAFE) for _ in range(length - len(chars))]
    # Shuffle so the hostile characters are not always at the start, but keep a safe
    # character first and last: leading/trailing spaces are legal yet get stripped by
    # too many tools (including some .env parsers) to be a fair test.
    middle = chars[:]
    secrets.SystemRandom().shuffle(middle)
    edge: list[str] = [c for c in middle if c in _SAFE][:2]
    for c in edge:
        middle.remove(c)
    return edge[0] + "".join(middle) + edge[1]
