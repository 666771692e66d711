"""`dotenv`: one file read by python-dotenv, what pydantic-settings' `env_file` uses.

Nothing goes into the environment: an app that stopped reading its `.env` gets its
defaults, exactly as it would in production.
"""

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

_HEADER = (
    "# Written by staging for this run from [tool.staging.env]; do not edit.\n"
    "# Values are double-quoted and escaped so python-dotenv reads them back verbatim.\n"
)
# python-dotenv expands ${NAME} and ${NAME:-default} in every value, quoted or not, and
# has no escape for "$". A variable named "=" can never exist (neither in the
# environment, where "=" ends the name, nor in a file we write), so ${=:-X} always
# resolves to X: that is how a literal "${" and a trailing backslash survive.
_LITERAL_DOLLAR = "${=:-$}"
_NOTHING = "${=:-}"


def encode_dotenv_value(value: str) -> str:
    """A double-quoted python-dotenv value that reads back as exactly `value`."""
    out: list[str] = []
    for i, char in enumerate(value):
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":  # universal-newline reading would turn a raw CR into LF
            out.append("\\r")
        elif char == "$" and value[i + 1 : i + 2] == "{":
            out.append(_LITERAL_DOLLAR)
        else:
            out.append(char)
    if value.endswith("\\"):
        # `\\"` at the end would read as an escaped quote; an empty expansion separates them.
        out.append(_NOTHING)
    return '"' + "".join(out) + '"'


def render_dotenv(values: Mapping[str, str]) -> str:
    return _HEADER + "".join(f"{name}={encode_dotenv_value(v)}\n" for name, v in values.items())


class DotenvDelivery(DeliveryStrategy):
    mode: ClassVar[DeliveryMode] = "dotenv"
    source: ClassVar[str] = "dotenv"
    source_arg: ClassVar[str] = "dotenv_settings"

    @property
    def phrase(self) -> str:
        return f"the dotenv file {self.path}"

    def describe(self, count: int) -> str:
        return f"dotenv file {self.path} ({count} variables)"

    def write(self, workspace: Workspace, rendered: Mapping[str, str]) -> Delivery:
        dest = target(workspace, self.path)
        delivery = Delivery(self.mode, self.describe(len(rendered)))
        clear_shipped(dest, self.path, self.mode, delivery.notes)
        write_private(dest, render_dotenv(rendered))
        delivery.files.append(dest)
        return delivery

    def unread(self, owner: str, config: ReadsConfig) -> Unread | None:
        files = config.env_files
        if not files:
            return Unread(
                f"{owner}.model_config has no env_file, so {self.path} is never read",
                f'restore env_file="{self.path}" in {owner}.model_config (or deliver settings '
                "the way production does: [tool.staging.settings] delivery)",
            )
        if normalised([self.path]) & normalised(files):
            return None
        shown = files[0] if len(files) == 1 else files
        return Unread(
            f"{owner}.model_config env_file={shown!r} does not include {self.path}",
            f'point env_file at "{self.path}" or set [tool.staging.settings] path = "{files[-1]}"',
        )
