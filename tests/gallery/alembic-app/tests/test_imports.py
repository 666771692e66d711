from catalog.imports import cents


def test_prices_become_cents() -> None:
    assert cents("9.9") == 990
    assert cents("12") == 1200
