"""What both baseline scripts do once their services are up: run the app by hand.

Write the app's `.env` (non-secret variables also exported, as on a developer's machine),
migrate, start the worker and the trigger, wait for the trigger. Plain subprocesses and
nothing from staging: this is what a team does without it. The caller stops the returned
worker (its `stop` timing covers that), so both baselines measure the same steps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def run_app_by_hand(
    *,
    app: Path,
    migrate_in: Path | None,
    cap: float,
    public: dict[str, str],
    password: str,
    times: dict[str, object],
) -> subprocess.Popen[bytes]:
    """Migrate, start the worker and the trigger; record timings in `times`; the worker."""
    dotenv = {**public, "DB_PASSWORD": password}
    env = {**os.environ, **public}
    for target in {app, migrate_in or app}:
        (target / ".env").write_text("".join(f"{k}='{v}'\n" for k, v in dotenv.items()))
    py = sys.executable
    step = time.monotonic()
    subprocess.run([py, "-m", "everflow.migrate"], cwd=migrate_in or app, env=env, check=True)
    times["migrate"] = time.monotonic() - step
    step = time.monotonic()
    worker = subprocess.Popen([py, "-m", "everflow.worker"], cwd=app, env=env)
    try:
        trigger = subprocess.Popen([py, "scripts/run_pipeline.py", "everflow"], cwd=app, env=env)
        try:
            times["trigger_exit"] = trigger.wait(timeout=cap)
            times["outcome"] = "green" if trigger.returncode == 0 else "red"
        except subprocess.TimeoutExpired:
            trigger.kill()
            trigger.wait()
            times["outcome"] = "capped"
    except BaseException:
        worker.terminate()
        worker.wait()
        raise
    times["pipeline"] = time.monotonic() - step
    times["worker_exit"] = worker.poll()
    return worker
