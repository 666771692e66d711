"""Command-line options and ini keys of the plugin, and where the project is."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from staging.services.backends import backend_choices

REQUIRE_ENV = "STAGING_PYTEST_REQUIRE"

MARKERS = (
    "staging_check: a check on the live environment of a `staging run` (its `tests` key); "
    "skipped when pytest runs outside that run's checks phase",
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("staging", "staging: the app's staging environment")
    group.addoption(
        "--staging",
        action="store_true",
        default=False,
        help="start the staging services for this session even if no test asks for them",
    )
    group.addoption(
        "--staging-project",
        metavar="DIR",
        default=None,
        help="dir with the pyproject.toml holding [tool.staging] (default: the rootdir)",
    )
    group.addoption(
        "--staging-backend",
        choices=backend_choices(),
        default=None,
        help="services backend (default: [tool.staging] backend, or STAGING_BACKEND)",
    )
    group.addoption(
        "--staging-require",
        action="store_true",
        default=False,
        help="fail, instead of skip, the tests that need services when no backend is available",
    )


@dataclass(frozen=True)
class PluginOptions:
    project: Path
    backend: str | None
    eager: bool
    require: bool

    @classmethod
    def of(cls, config: pytest.Config) -> PluginOptions:
        project = config.getoption("--staging-project") or str(config.rootpath)
        return cls(
            project=Path(project).resolve(),
            backend=config.getoption("--staging-backend"),
            eager=bool(config.getoption("--staging")),
            require=bool(config.getoption("--staging-require"))
            or os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false"),
        )
