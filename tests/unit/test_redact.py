from __future__ import annotations

import json
import shlex
from urllib.parse import quote

from staging.redact import MASK, Redactor, is_secret_name

SECRET = "a@b:c/d%e#f'g\"h i"


def test_every_encoding_is_masked() -> None:
    r = Redactor([SECRET])
    for form in (SECRET, quote(SECRET, safe=""), shlex.quote(SECRET), json.dumps(SECRET)):
        out = r(f"before {form} after")
        assert SECRET not in out and quote(SECRET, safe="") not in out
        assert MASK in out


def test_url_userinfo_masked_even_when_unknown() -> None:
    assert Redactor()("postgresql://app:hunter2@db:5432/x") == "postgresql://app:***@db:5432/x"


def test_short_values_are_not_registered() -> None:
    r = Redactor(["", "ab"])
    assert r("ab cd") == "ab cd"


def test_structures() -> None:
    r = Redactor([SECRET])
    assert r.value({"a": [SECRET, 1], "b": {"c": SECRET}}) == {"a": [MASK, 1], "b": {"c": MASK}}


def test_secret_names() -> None:
    for name in ("DB_PASSWORD", "api_token", "SECRET_KEY", "DATABASE_DSN"):
        assert is_secret_name(name)
    for name in ("DB_HOST", "DB_PORT", "TEMPORAL_NAMESPACE", "SLACK_WEBHOOK_URL"):
        assert not is_secret_name(name)


def test_fragments_of_a_long_secret_are_masked() -> None:
    secret = "Zq8v@k:/Lw%#T'\"m 3RbXy"
    r = Redactor([secret])
    # what libpq prints for a DSN whose password was not escaped: a piece of it
    fragment = secret[5:16]
    assert fragment not in r(f'invalid integer value "{fragment}" for connection option "port"')


def test_scrubbers_run_after_masking() -> None:
    r = Redactor(scrubbers=[lambda t: t.replace("frag", "***")])
    assert r("a frag b") == "a *** b"


def test_extended_copy_masks_more_and_leaves_the_original_alone() -> None:
    base = Redactor(["alpha-password-A1"], scrubbers=[lambda t: t.replace("scrub", "***")])
    wider = base.extended(["zzyzx-token-Q9w8e"])

    text = "alpha-password-A1 zzyzx-token-Q9w8e scrub"
    assert wider.text(text) == "*** *** ***"
    assert base.text(text) == "*** zzyzx-token-Q9w8e ***"
    assert set(base.secrets) <= set(wider.secrets)


PASSWORD = "Zq8v@k:/Lw%#T'\"m 3RbXy"


def test_a_dsn_built_on_the_password_keeps_its_public_parts_readable() -> None:
    r = Redactor([PASSWORD])
    r.add(f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:5432/app")
    line = "worker.started db=app@127.0.0.1:5432/app url=postgresql://app@127.0.0.1:5432/app"
    assert r(line) == line  # no run of "postgresql://", "127.0.0.1" was taken for a secret


def test_a_raw_run_is_masked_to_its_end_in_one_piece() -> None:
    r = Redactor([PASSWORD])
    for start, end in ((0, 4), (3, 10), (5, 22), (1, 23)):
        assert r(f"<{PASSWORD[start:end]}>") == f"<{MASK}>", (start, end)
    assert r(f"x{PASSWORD[2:5]}y") == f"x{PASSWORD[2:5]}y"  # 3 characters: below the rule


def test_fragments_can_be_left_out_and_long_values_are_masked_whole() -> None:
    r = Redactor()
    r.add("staging-fake-token-1234", fragments=False)
    assert r("staging-fake-token-1234 /app/.staging/runs") == "*** /app/.staging/runs"
    key = "k" * 30 + "-" + "q" * 60  # a long value (key, certificate) is masked whole only
    r.add(key)
    assert r(f"{key} kkkk qqqq") == "*** kkkk qqqq"


def test_secrets_lists_whole_forms_only() -> None:
    r = Redactor([PASSWORD])
    assert PASSWORD in r.secrets and quote(PASSWORD, safe="") in r.secrets
    assert all(len(s) >= len(PASSWORD) for s in r.secrets)


def test_a_very_long_value_is_masked_in_every_form() -> None:
    # A key file: its hex form is 20,000 characters, one trie chain (no deep recursion).
    key = (
        "-----BEGIN KEY-----\n" + "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC/+" * 300 + "\n-----END KEY-----"
    )
    r = Redactor([key])
    for form in (key, key.encode().hex(), quote(key, safe=""), json.dumps(key)[1:-1]):
        assert r(f"<{form}>") == f"<{MASK}>"
