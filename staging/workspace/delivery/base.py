"""What every delivery mode shares: the `Delivery` record, the strategy base, safe writes.

A strategy is one way production hands the app its settings. Each knows how to write the
rendered variables, how to describe what it wrote, which pydantic-settings source must read
them, and why a `model_config` would not read them (with the narrowest fix). The preflight
reads those answers from the object itself, never from the display string.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar, Literal, Protocol

from staging.errors import ConfigError
from staging.workspace.copy import Workspace

DeliveryMode = Literal["dotenv", "environ", "secrets_dir"]


class ReadsConfig(Protocol):
    """What a strategy needs from the app's `model_config` (the probe's report has it)."""

    @property
    def env_files(self) -> list[str]: ...

    @property
    def secrets_dirs(self) -> list[str]: ...


@dataclass(frozen=True)
class Unread:
    """Why the app's settings class does not read a channel, and the narrowest fix."""

    cause: str
    hint: str


@dataclass
class Delivery:
    mode: DeliveryMode
    channel: str  # human description, for people only: "dotenv file .env (12 variables)"
    env_vars: dict[str, str] = field(default_factory=dict, repr=False)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    strategy: DeliveryStrategy | None = None


class DeliveryStrategy(ABC):
    """One delivery mode, bound to `[tool.staging.settings] path`."""

    mode: ClassVar[DeliveryMode]
    # The probe's label of the pydantic-settings source that must read this channel, and
    # the `settings_customise_sources` parameter that carries it.
    source: ClassVar[str]
    source_arg: ClassVar[str]

    def __init__(self, path: str = "") -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DeliveryStrategy)
            and type(other) is type(self)
            and (other.path == self.path)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.path))

    @property
    @abstractmethod
    def phrase(self) -> str:
        """The channel in a sentence: "the dotenv file .env"."""

    @abstractmethod
    def describe(self, count: int) -> str:
        """What was delivered, for the console: "dotenv file .env (12 variables)"."""

    @abstractmethod
    def write(self, workspace: Workspace, rendered: Mapping[str, str]) -> Delivery:
        """Write (or hand over) `rendered`; never outside `workspace.app`."""

    def unread(self, owner: str, config: ReadsConfig) -> Unread | None:
        """Why `owner.model_config` does not read this channel; None when it does."""
        return None

    def deliver(self, workspace: Workspace, rendered: Mapping[str, str]) -> Delivery:
        check_values(rendered)
        delivery = self.write(workspace, rendered)
        delivery.strategy = self
        return delivery


def check_values(rendered: Mapping[str, str]) -> None:
    for name, value in rendered.items():
        if "\0" in value:
            raise ConfigError(
                f"tool.staging.env.{name}: the rendered value contains a NUL character",
                expected="a value without NUL (no delivery channel can carry it)",
                observed="a NUL character",
                hint=f"remove the \\u0000 from the template of {name}",
            )


def normalised(paths: Sequence[str]) -> set[str]:
    return {os.path.normpath(p) for p in paths}


def target(workspace: Workspace, path: str) -> Path:
    rel = PurePosixPath(path)
    if not path or rel.is_absolute() or ".." in rel.parts:
        raise ConfigError(
            f"tool.staging.settings.path: {path!r} is not inside the app",
            expected="a relative path inside the app dir, e.g. '.env'",
            observed=repr(path),
            hint="settings.path is relative to the app's working directory; "
            "staging never writes outside its workspace copy",
        )
    dest = workspace.app / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest


def clear_shipped(dest: Path, path: str, mode: DeliveryMode, notes: list[str]) -> None:
    """Make room at `dest` for what staging writes, saying what the app itself shipped there."""
    if os.path.lexists(dest) and not (mode == "secrets_dir" and dest.is_dir()):
        if dest.is_dir() and not dest.is_symlink():
            raise ConfigError(
                f"tool.staging.settings.path: {path} is a directory in the app",
                expected=f"a file path for the {mode} delivery",
                observed=f"the app ships a directory at {path}",
                hint="point settings.path at the file production writes (e.g. '.env')",
            )
        dest.unlink()
        notes.append(
            f"the app ships its own {path}; staging replaced it in the workspace copy only"
        )
    elif os.path.isdir(dest):
        notes.append(
            f"the app ships a {path}/ directory; staging wrote its files into the workspace copy"
        )


def write_private(dest: Path, content: str) -> None:
    if os.path.lexists(dest):
        dest.unlink()
    # Created 0600 from the first byte: the file holds the run's generated password.
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(content)
