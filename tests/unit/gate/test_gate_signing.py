from __future__ import annotations

from typing import Any

from staging.gate.signing import (
    SIGNATURE_FIELD,
    SignatureState,
    canonical,
    gate_key,
    sign,
    verify,
)

KEY = b"k3y with spaces & symbols"


def verdict() -> dict[str, Any]:
    return {"run_id": "r1", "status": "failed", "tree": {"hash": "abc"}, "duration": 1.5}


def test_signed_verdict_verifies_and_is_a_copy() -> None:
    original = verdict()
    signed = sign(original, KEY)
    assert SIGNATURE_FIELD not in original
    assert signed[SIGNATURE_FIELD].startswith("hmac-sha256:")
    assert verify(signed, KEY) is SignatureState.VALID


def test_unsigned_is_missing_whatever_the_key() -> None:
    assert verify(verdict(), KEY) is SignatureState.MISSING
    assert verify(verdict(), None) is SignatureState.MISSING


def test_status_edited_after_signing_is_invalid() -> None:
    signed = sign(verdict(), KEY)
    signed["status"] = "passed"
    assert verify(signed, KEY) is SignatureState.INVALID


def test_other_key_or_garbage_signature_is_invalid() -> None:
    signed = sign(verdict(), KEY)
    assert verify(signed, b"another key") is SignatureState.INVALID
    assert (
        verify({**signed, SIGNATURE_FIELD: "hmac-sha256:zz\u00e9"}, KEY) is SignatureState.INVALID
    )
    assert verify({**signed, SIGNATURE_FIELD: "md5:00"}, KEY) is SignatureState.INVALID


def test_signed_but_no_key_to_check_is_unverifiable() -> None:
    assert verify(sign(verdict(), KEY), None) is SignatureState.UNVERIFIABLE


def test_canonical_ignores_key_order_and_the_signature() -> None:
    a = verdict()
    b = dict(reversed(list(a.items())))
    assert canonical(a) == canonical(b)
    assert canonical(sign(a, KEY)) == canonical(a)


def test_resigning_replaces_the_old_signature() -> None:
    signed = sign(sign(verdict(), b"old key"), KEY)
    assert verify(signed, KEY) is SignatureState.VALID


def test_gate_key_from_environment() -> None:
    assert gate_key({"STAGING_GATE_KEY": "s3cret"}) == b"s3cret"
    assert gate_key({"STAGING_GATE_KEY": ""}) is None
    assert gate_key({}) is None
