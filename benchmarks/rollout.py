"""The rollout rehearsal's cost (issue 15): `--rollout` against one pipeline's own time.

    python benchmarks/rollout.py [--runs 3] [--backend all|process|docker]

Each measured run is `staging run --rollout` of the example with the compatible
(`workflow.patched`) change over the example as the last green tree, in a subprocess.
From its verdict: the rollout phase's duration (old worker start, the pipeline across
the swap, new worker start, the old worker's stop) and the pipelines phase's own
pipeline duration in the same run. Target: rollout <= 1.5x the pipeline. Results go to
benchmarks/results/rollout.json (+ .md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.options import save_section  # noqa: E402

TARGET = 1.5
CASE = "rollout/paced-transform-patched"


def one_run(backend: str) -> dict[str, float]:
    from tests.integration.test_rollout import green_then_change

    scratch = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    try:
        app, _ = green_then_change(CASE, scratch / "app")
        command = [sys.executable, "-m", "staging", "run", "--project", str(app)]
        command += ["--backend", backend, "--rollout", "--json"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"staging run --rollout exited {done.returncode}: {done.stdout[-2000:]}"
            )
        (run,) = (app / ".staging" / "runs").iterdir()
        verdict = json.loads((run / "verdict.json").read_text())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    phases = {p["name"]: p for p in verdict["phases"]}
    pipeline = verdict["pipelines"][0]["duration"]
    rollout = phases["rollout"]["duration"]
    return {"rollout": rollout, "pipeline": pipeline, "ratio": rollout / pipeline}


def measure(backend: str, runs: int) -> dict[str, Any]:
    samples = [one_run(backend) for _ in range(runs)]
    row: dict[str, Any] = {"backend": backend, "runs": runs, "load": os.getloadavg()[0]}
    for key in ("rollout", "pipeline", "ratio"):
        values = [s[key] for s in samples]
        row[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    row["target"] = TARGET
    row["met"] = row["ratio"]["median"] <= TARGET
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | runs | rollout phase (median, min-max) | one pipeline | ratio | target |",
        "|---|---:|---|---|---:|---|",
    ]
    for r in rows:
        ro, pi, ra = r["rollout"], r["pipeline"], r["ratio"]
        lines.append(
            f"| {r['backend']} | {r['runs']} "
            f"| {ro['median']:.2f}s ({ro['min']:.2f}-{ro['max']:.2f}) "
            f"| {pi['median']:.2f}s | {ra['median']:.2f}x | <= {TARGET}x "
            f"{'met' if r['met'] else 'MISSED'} (load {r['load']:.1f}) |"
        )
    return "\n".join(lines) + "\n"


def bench_rollout(runs: int, backends: list[str], out: Path) -> int:
    rows = [measure(backend, max(1, runs)) for backend in backends]
    save_section(out, "rollout", rows, markdown(rows))
    return 0 if all(r["met"] for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=["all", "process", "docker"], default="process")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "latest.json")
    args = parser.parse_args(argv)
    backends = ["process", "docker"] if args.backend == "all" else [args.backend]
    return bench_rollout(args.runs, backends, args.out)


if __name__ == "__main__":
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TC_HOST", "127.0.0.1")
    sys.exit(main())
