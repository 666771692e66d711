"""Deliver the rendered settings into the workspace the way production does.

`dotenv` writes one file read by python-dotenv (what pydantic-settings' `env_file`
uses), `secrets_dir` writes one file per variable (pydantic-settings' `secrets_dir`,
Docker/Kubernetes secrets), `environ` hands variables to the app processes' environment.
Only `environ` puts anything in the environment: with `dotenv`, an app that stopped
reading its `.env` gets its defaults, exactly as it would in production.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from staging.errors import ConfigError
from staging.workspace.copy import Workspace

DeliveryMode = Literal["dotenv", "environ", "secrets_dir"]
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


@dataclass
class Delivery:
    mode: DeliveryMode
    channel: str  # human description: "dotenv file .env (12 variables)"
    env_vars: dict[str, str] = field(default_factory=dict, repr=False)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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


def deliver(
    workspace: Workspace, rendered: Mapping[str, str], *, mode: DeliveryMode, path: str
) -> Delivery:
    """Write (or hand over) the rendered variables; never outside `workspace.app`."""
    for name, value in rendered.items():
        if "\0" in value:
            raise ConfigError(
                f"tool.staging.env.{name}: the rendered value contains a NUL character",
                expected="a value without NUL (no delivery channel can carry it)",
                observed="a NUL character",
                hint=f"remove the \\u0000 from the template of {name}",
            )
    if mode == "environ":
        n = len(rendered)
        return Delivery(mode, f"environment variables ({n} variables)", dict(rendered))
    target = _target(workspace, path)
    delivery = Delivery(mode, "")
    if os.path.lexists(target) and not (mode == "secrets_dir" and target.is_dir()):
        if target.is_dir() and not target.is_symlink():
            raise ConfigError(
                f"tool.staging.settings.path: {path} is a directory in the app",
                expected=f"a file path for the {mode} delivery",
                observed=f"the app ships a directory at {path}",
                hint="point settings.path at the file production writes (e.g. '.env')",
            )
        target.unlink()
        delivery.notes.append(
            f"the app ships its own {path}; staging replaced it in the workspace copy only"
        )
    elif os.path.isdir(target):
        delivery.notes.append(
            f"the app ships a {path}/ directory; staging wrote its files into the workspace copy"
        )
    if mode == "dotenv":
        _write_private(target, render_dotenv(rendered))
        delivery.files.append(target)
        delivery.channel = f"dotenv file {path} ({len(rendered)} variables)"
    elif mode == "secrets_dir":
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, value in rendered.items():
            _write_private(target / name, value)
            delivery.files.append(target / name)
            if value != value.strip():
                delivery.notes.append(
                    f"{name} has leading/trailing whitespace, which pydantic-settings "
                    "strips when reading a secrets file"
                )
        delivery.channel = f"secrets dir {path}/ ({len(rendered)} files)"
    else:
        raise ConfigError(
            f"tool.staging.settings.delivery: unknown delivery mode {mode!r}",
            expected="dotenv, environ or secrets_dir",
            observed=repr(mode),
            hint="set settings.delivery to how production hands the app its settings",
        )
    return delivery


def _target(workspace: Workspace, path: str) -> Path:
    rel = PurePosixPath(path)
    if not path or rel.is_absolute() or ".." in rel.parts:
        raise ConfigError(
            f"tool.staging.settings.path: {path!r} is not inside the app",
            expected="a relative path inside the app dir, e.g. '.env'",
            observed=repr(path),
            hint="settings.path is relative to the app's working directory; "
            "staging never writes outside its workspace copy",
        )
    target = workspace.app / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _write_private(target: Path, content: str) -> None:
    if os.path.lexists(target):
        target.unlink()
    # Created 0600 from the first byte: the file holds the run's generated password.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(content)
