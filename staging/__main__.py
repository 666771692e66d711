from __future__ import annotations

from staging.cli import entry

if __name__ == "__main__":
    entry()
