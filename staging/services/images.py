"""The default images of the built-in service kinds: defined here once.

`[tool.staging.postgres] image`, `[tool.staging.temporal] image`, `ServiceSpec` and the
kinds (`staging.services.kinds`) read these; a leaf module, so the service modules can
use them without importing the kind registry (which names the service modules).
`STAGING_POSTGRES_IMAGE` / `STAGING_TEMPORAL_IMAGE` override them per run.
"""

from __future__ import annotations

POSTGRES = "postgres:16-alpine"
TEMPORAL = "temporalio/temporal:latest"
