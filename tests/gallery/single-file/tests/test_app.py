from app import label


def test_first_ping_is_named() -> None:
    assert label(0) == "first ping"
    assert label(2) == "ping #3"
