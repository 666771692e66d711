from pricecache.pricing import CATALOG, cache_key, price_cents


def test_every_catalog_item_has_a_stable_positive_price() -> None:
    for sku in CATALOG:
        assert 100 <= price_cents(sku) < 10_000
        assert price_cents(sku) == price_cents(sku)


def test_cache_keys_are_namespaced_per_sku() -> None:
    assert cache_key("widget") == "quote:widget"
    assert len({cache_key(sku) for sku in CATALOG}) == len(CATALOG)
