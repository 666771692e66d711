"""The gallery apps are apps, not part of staging's suite: their own tests run inside
`tests/integration/test_gallery.py`, against a copy, in the app's interpreter."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if collection_path.parent == HERE and collection_path.is_dir():
        return True
    return None
