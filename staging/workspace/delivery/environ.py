"""`environ`: the variables go into the app processes' environment, nothing is written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from staging.workspace.copy import Workspace
from staging.workspace.delivery.base import Delivery, DeliveryMode, DeliveryStrategy


class EnvironDelivery(DeliveryStrategy):
    mode: ClassVar[DeliveryMode] = "environ"
    source: ClassVar[str] = "environment"
    source_arg: ClassVar[str] = "env_settings"

    def __init__(self, path: str = "") -> None:
        super().__init__("")  # the environment has no path; `settings.path` is ignored

    @property
    def phrase(self) -> str:
        return "environment variables"

    def describe(self, count: int) -> str:
        return f"environment variables ({count} variables)"

    def write(self, workspace: Workspace, rendered: Mapping[str, str]) -> Delivery:
        return Delivery(self.mode, self.describe(len(rendered)), dict(rendered))
