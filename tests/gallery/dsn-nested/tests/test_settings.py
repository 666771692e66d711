from shop.rollup import total
from shop.settings import ShopSettings


def test_nested_variables_use_the_delimiter(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHOP_TEMPORAL__NAMESPACE", "shop")
    assert ShopSettings(_env_file=None).temporal.namespace == "shop"


def test_refunds_do_not_count() -> None:
    assert total([5, -2, 1]) == 6
