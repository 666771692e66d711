"""One module per phase of a run, each `phase(ctx) -> PhaseResult`, in run order."""

from __future__ import annotations

from staging.phases.checks import checks_phase
from staging.phases.config import config_phase
from staging.phases.pipelines import pipelines_phase
from staging.phases.preflight import preflight_phase
from staging.phases.replay import replay_phase
from staging.phases.services import services_phase
from staging.phases.setup import setup_phase
from staging.phases.worker import worker_phase
from staging.phases.workspace import workspace_phase
from staging.runner import Phase

RUN_PHASES: list[tuple[str, Phase]] = [
    ("config", config_phase),
    ("services", services_phase),
    ("workspace", workspace_phase),
    ("preflight", preflight_phase),
    ("replay", replay_phase),
    ("setup", setup_phase),
    ("worker", worker_phase),
    ("pipelines", pipelines_phase),
    ("checks", checks_phase),
]
