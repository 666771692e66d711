"""`backend = "attach"`: run against a Temporal cluster and a Postgres server that exist.

`backend.AttachBackend` implements the `Backend` protocol over them; `target` reads
`[tool.staging.attach]` and the environment variables it names; `records` is the owner
record kept with the resources; `services` are the run's database + role and namespace;
`pg` and `namespaces` do the per-run work on each side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from staging.services.backends import BackendOptions
    from staging.services.base import Backend


def create(options: BackendOptions) -> Backend:
    """The registry's factory: needs the run's (or the project's) config."""
    from staging.errors import ConfigError
    from staging.services.attach.backend import AttachBackend

    if options.config is None:
        raise ConfigError(
            "the attach backend needs the project's [tool.staging.attach] section",
            expected='a StagingConfig with backend = "attach"',
            observed="no config was given",
            hint="run the command from the project (or with --project) whose pyproject.toml "
            "holds [tool.staging.attach]",
        )
    return AttachBackend(options.config)
