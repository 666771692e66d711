"""The `.staging/` directory in the app dir: runs, verdicts, last-green, up.json."""

from __future__ import annotations

from pathlib import Path

STATE_DIRNAME = ".staging"


def ensure_state_dir(app_dir: Path) -> Path:
    """Create `.staging/` with a `.gitignore` of `*`, so it never gets committed or deployed."""
    state = app_dir / STATE_DIRNAME
    state.mkdir(parents=True, exist_ok=True)
    ignore = state / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    return state


def runs_dir(app_dir: Path) -> Path:
    return app_dir / STATE_DIRNAME / "runs"
