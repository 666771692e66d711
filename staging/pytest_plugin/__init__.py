"""staging's pytest plugin: the run's environment for the app's own tests.

Registered through the `pytest11` entry point, so it loads in every pytest session of an
environment that has `staging` installed: it must cost nothing and do nothing unless
asked (`pytest --staging`, or a test using one of its fixtures). This module therefore
imports nothing heavy; the fixtures module is registered only once pytest configures,
and services start only when a fixture asks for them.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`: importing the plugin must cost nothing

if TYPE_CHECKING:
    import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    from staging.pytest_plugin.options import add_options

    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from staging.pytest_plugin import fixtures
    from staging.pytest_plugin.options import MARKERS

    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "staging-fixtures")
