"""What a `staging run` hands the pytest it starts for Python checks: its live services.

The checks phase runs the app's `tests = [...]` in the app's interpreter; the plugin there
reads this from the environment and attaches to the run's services instead of starting
its own. Passed in an environment variable, never a file: it holds the database password.
Stdlib only, so reading it costs nothing at plugin load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

ATTACH_ENV = "STAGING_PYTEST_ATTACH"


@dataclass(frozen=True)
class Attach:
    postgres: dict[str, Any]  # PostgresEndpoint fields
    temporal: dict[str, Any]  # TemporalEndpoint fields
    backend: str
    run_id: str
    captured_file: str = ""  # the run's captured notifications so far (JSON list)
    captured_urls: dict[str, str] = field(default_factory=dict)  # sink name -> its URL
    settings: dict[str, Any] = field(default_factory=dict)  # the preflight's ProbeReport
    workers: list[dict[str, Any]] = field(default_factory=list)  # name, task_queue, pid
    app_dir: str = ""  # the run's workspace copy of the app

    def to_env(self) -> dict[str, str]:
        return {ATTACH_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Attach | None:
        raw = (os.environ if environ is None else environ).get(ATTACH_ENV, "")
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{ATTACH_ENV} is not what `staging run` writes (expected its JSON object; "
                f"observed {type(exc).__name__}: {exc}). Hint: unset it; it is set only for "
                "the pytest run of the checks phase"
            ) from exc
