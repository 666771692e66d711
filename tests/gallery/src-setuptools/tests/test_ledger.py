from ledger.activities import balance_after
from ledger.settings import Settings


def test_balance_adds_the_new_entry() -> None:
    assert balance_after([10, -3], 5) == 12


def test_settings_read_prefixless_variables(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DB_PORT", "6543")
    assert Settings(_env_file=None).db_port == 6543
