"""`secrets_dir`: one file per variable (pydantic-settings' `secrets_dir`, Docker and
Kubernetes secrets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from staging.workspace.copy import Workspace
from staging.workspace.delivery.base import (
    Delivery,
    DeliveryMode,
    DeliveryStrategy,
    ReadsConfig,
    Unread,
    clear_shipped,
    normalised,
    target,
    write_private,
)


class SecretsDirDelivery(DeliveryStrategy):
    mode: ClassVar[DeliveryMode] = "secrets_dir"
    source: ClassVar[str] = "secrets_dir"
    source_arg: ClassVar[str] = "file_secret_settings"

    @property
    def phrase(self) -> str:
        return f"the secrets dir {self.path}" if self.path else "the secrets dir"

    def describe(self, count: int) -> str:
        return f"secrets dir {self.path}/ ({count} files)"

    def write(self, workspace: Workspace, rendered: Mapping[str, str]) -> Delivery:
        dest = target(workspace, self.path)
        delivery = Delivery(self.mode, self.describe(len(rendered)))
        clear_shipped(dest, self.path, self.mode, delivery.notes)
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, value in rendered.items():
            write_private(dest / name, value)
            delivery.files.append(dest / name)
            if value != value.strip():
                delivery.notes.append(
                    f"{name} has leading/trailing whitespace, which pydantic-settings "
                    "strips when reading a secrets file"
                )
        return delivery

    def unread(self, owner: str, config: ReadsConfig) -> Unread | None:
        dirs = config.secrets_dirs
        if not self.path:
            return None
        if not dirs:
            return Unread(
                f"{owner}.model_config has no secrets_dir, so {self.path} is never read",
                f'set secrets_dir="{self.path}" in {owner}.model_config (or deliver settings '
                "the way production does)",
            )
        if normalised([self.path]) & normalised(dirs):
            return None
        shown = dirs[0] if len(dirs) == 1 else dirs
        return Unread(
            f"{owner}.model_config secrets_dir={shown!r} does not include {self.path}",
            f'point secrets_dir at "{self.path}" or set [tool.staging.settings] path',
        )
