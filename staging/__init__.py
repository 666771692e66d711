"""staging: ephemeral staging environments and a pre-deploy gate for Temporal workers."""

from __future__ import annotations

__version__ = "0.1.0"
