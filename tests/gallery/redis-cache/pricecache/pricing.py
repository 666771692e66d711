"""Pure pricing rules and the cache's key scheme, shared by the worker and the checks."""

from __future__ import annotations

import zlib

CATALOG = ("widget", "gadget", "gizmo")
KEY_PREFIX = "quote:"


def price_cents(sku: str) -> int:
    """A stable list price per SKU (the real app asks a pricing engine)."""
    return 100 + zlib.crc32(sku.encode()) % 9900


def cache_key(sku: str) -> str:
    return f"{KEY_PREFIX}{sku}"
