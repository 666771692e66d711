"""`.staging/up.json`: the endpoints of services left running, the local attach point.

Written by `staging up` and by a red run kept with `--keep-on-failure`; read and removed
by `staging down`. It holds the password, so it is private (0600) and git-ignored.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from staging.services.base import owner_id
from staging.services.environment import Environment
from staging.state import ensure_state_dir

UP_FILE = "up.json"


def endpoints_document(env: Environment) -> dict[str, Any]:
    pg, tp = env.postgres, env.temporal
    return {
        "run_id": env.spec.run_id,
        "backend": env.backend_name,
        "backend_reason": env.backend_reason,
        "owner": owner_id(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "postgres": {
            "host": pg.host,
            "port": pg.port,
            "user": pg.user,
            "password": pg.password,
            "database": pg.database,
            "url": pg.url,
        },
        "temporal": {
            "host": tp.host,
            "port": tp.port,
            "address": tp.address,
            "namespace": tp.namespace,
            "ui_url": tp.ui_url,
        },
        # The extra [[tool.staging.services]], by name: {"redis": {"host": .., "port": ..}}.
        "services": {
            name: {"host": ep.host, "port": ep.port, "address": ep.address}
            for name, ep in env.generic.items()
        },
    }


def write_up_file(project: Path, document: dict[str, Any]) -> Path:
    path = ensure_state_dir(project) / UP_FILE
    # Created 0600 from the first byte: the password must never be world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, indent=2)
    path.chmod(0o600)
    return path
