"""HMAC-SHA256 signatures over verdicts, so a hand-written green verdict cannot open the gate.

The signature covers a canonical JSON of the whole verdict minus its `signature` field
(sorted keys, no whitespace, UTF-8), so any edit — a status flipped to "passed", a tree
hash swapped — breaks it. The key comes from `STAGING_GATE_KEY` and is never printed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

KEY_ENV = "STAGING_GATE_KEY"
SIGNATURE_FIELD = "signature"
_SCHEME = "hmac-sha256"


class SignatureState(enum.StrEnum):
    VALID = "valid"
    MISSING = "missing"  # the verdict carries no signature
    INVALID = "invalid"  # a signature that does not match this content and key
    UNVERIFIABLE = "unverifiable"  # signed, but no key here to check it with


def gate_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key from `STAGING_GATE_KEY`; None when unset or empty."""
    value = (os.environ if environ is None else environ).get(KEY_ENV, "")
    return value.encode("utf-8") if value else None


def canonical(verdict: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in verdict.items() if k != SIGNATURE_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _digest(verdict: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(verdict), hashlib.sha256).hexdigest()


def sign(verdict: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """A copy of `verdict` with `signature: "hmac-sha256:<hex>"` (any old one replaced)."""
    signed = {k: v for k, v in verdict.items() if k != SIGNATURE_FIELD}
    signed[SIGNATURE_FIELD] = f"{_SCHEME}:{_digest(signed, key)}"
    return signed


def verify(verdict: Mapping[str, Any], key: bytes | None) -> SignatureState:
    signature = verdict.get(SIGNATURE_FIELD)
    if not signature:
        return SignatureState.MISSING
    if key is None:
        return SignatureState.UNVERIFIABLE
    scheme, _, value = str(signature).partition(":")
    if scheme != _SCHEME:
        return SignatureState.INVALID
    expected = _digest(verdict, key)
    # Constant time: a byte-by-byte early exit would leak how much of a forgery is right.
    if hmac.compare_digest(expected.encode("ascii"), value.encode("ascii", "replace")):
        return SignatureState.VALID
    return SignatureState.INVALID
