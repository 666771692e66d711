"""Deliver the rendered settings into the workspace the way production does.

One module per mode, each a `DeliveryStrategy`: `dotenv` (a file python-dotenv reads, what
pydantic-settings' `env_file` uses), `environ` (the app processes' environment) and
`secrets_dir` (one file per variable). Only `environ` puts anything in the environment:
with `dotenv`, an app that stopped reading its `.env` gets its defaults, exactly as it
would in production. The `Delivery` a run gets carries its strategy, which the settings
preflight asks why a `model_config` would not read the channel.
"""

from __future__ import annotations

from collections.abc import Mapping

from staging.errors import ConfigError
from staging.workspace.copy import Workspace
from staging.workspace.delivery.base import Delivery, DeliveryMode, DeliveryStrategy, Unread
from staging.workspace.delivery.dotenv import DotenvDelivery, encode_dotenv_value, render_dotenv
from staging.workspace.delivery.environ import EnvironDelivery
from staging.workspace.delivery.secrets_dir import SecretsDirDelivery

STRATEGIES: dict[str, type[DeliveryStrategy]] = {
    s.mode: s for s in (DotenvDelivery, EnvironDelivery, SecretsDirDelivery)
}


def strategy_for(mode: str, path: str = "") -> DeliveryStrategy:
    """The strategy for `[tool.staging.settings] delivery` + `path`."""
    kind = STRATEGIES.get(mode)
    if kind is None:
        raise ConfigError(
            f"tool.staging.settings.delivery: unknown delivery mode {mode!r}",
            expected=", ".join(STRATEGIES),
            observed=repr(mode),
            hint="set settings.delivery to how production hands the app its settings",
        )
    return kind(path)


def deliver(
    workspace: Workspace, rendered: Mapping[str, str], *, mode: DeliveryMode | str, path: str
) -> Delivery:
    """Write (or hand over) the rendered variables; never outside `workspace.app`."""
    return strategy_for(mode, path).deliver(workspace, rendered)


__all__ = [
    "STRATEGIES",
    "Delivery",
    "DeliveryMode",
    "DeliveryStrategy",
    "DotenvDelivery",
    "EnvironDelivery",
    "SecretsDirDelivery",
    "Unread",
    "deliver",
    "encode_dotenv_value",
    "render_dotenv",
    "strategy_for",
]
