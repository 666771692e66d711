"""`staging init`: inspect an app without running it and write a commented `[tool.staging]`."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from pydantic import ValidationError

from staging.config.model import StagingConfig
from staging.config.render import validate_templates
from staging.errors import ConfigError
from staging.init.discover import Discovery, discover
from staging.init.render import render
from staging.init.write import append_section, create, existing_section


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "init", help="write a [tool.staging] section for an app, found in its code"
    )
    p.add_argument("--project", type=Path, default=Path("."), help="the app's dir (default .)")
    p.add_argument(
        "--print", dest="to_stdout", action="store_true", help="print it; change no file"
    )
    p.add_argument("--create", action="store_true", help="create pyproject.toml if missing")


def run(args: argparse.Namespace) -> int:
    project: Path = args.project
    if not project.is_dir():
        raise ConfigError(
            f"staging init: {project} is not a directory",
            expected="the app's project directory",
            observed=f"{project} ({'a file' if project.exists() else 'not found'})",
            hint="pass --project DIR, the dir that holds (or will hold) pyproject.toml",
        )
    pyproject = project / "pyproject.toml"
    _check_target(pyproject, args.to_stdout, args.create)
    found = discover(project)
    section = render(found)
    validate(section, pyproject)
    _narrate(found)
    if args.to_stdout:
        sys.stdout.write(section.lstrip("\n"))
        return 0
    if pyproject.exists():
        append_section(pyproject, section)
    else:
        create(pyproject, section.lstrip("\n"))
    sys.stderr.write(
        f"wrote [tool.staging] to {pyproject}\nnext: staging run --project {project}\n"
    )
    return 0


def _check_target(pyproject: Path, to_stdout: bool, may_create: bool) -> None:
    if pyproject.is_file():
        if not to_stdout and existing_section(pyproject):
            raise ConfigError(
                f"{pyproject} already has a [tool.staging] section; init never overwrites it",
                expected="a pyproject.toml without [tool.staging]",
                observed="[tool.staging] present",
                hint="compare with `staging init --print` and merge what you need by hand",
            )
    elif not to_stdout and not may_create:
        raise ConfigError(
            f"no pyproject.toml in {pyproject.parent}",
            expected="an app dir with a pyproject.toml",
            observed="none",
            hint="pass --create to create one holding only [tool.staging], "
            "or --print to see the section",
        )


def validate(section: str, pyproject: Path) -> None:
    """The section must load with this staging's config model: init's own check."""
    try:
        table = tomllib.loads(section)["tool"]["staging"]
        config = StagingConfig.model_validate(table)
        validate_templates(config.env, source=str(pyproject))
    except (tomllib.TOMLDecodeError, ValidationError, KeyError) as exc:
        raise ConfigError(
            "staging init produced a section its own config model rejects (a bug in init)",
            expected="a [tool.staging] that loads",
            observed=str(exc).splitlines()[0],
            hint="run `staging init --print`, fix the named key by hand, and report the app's "
            "shape",
        ) from exc


def _narrate(found: Discovery) -> None:
    out = sys.stderr
    out.write(f"staging init: {found.project_dir}\n")
    for line in found.found:
        out.write(f"  found: {line}\n")
    for line in found.undecided:
        out.write(f"  could not decide: {line} (marked TODO)\n")
    if not found.undecided:
        out.write("  nothing left undecided\n")
