"""Sharded runs (issue 14): `--shard 1/2` + `--shard 2/2` in parallel against one full run.

    python benchmarks/shards.py [--runs 3] [--backend all|process|docker] [--pause 2.0]

The app is tests/integration/apps/four-pipelines (four pipelines on one worker), each
pipeline's workflow pausing `--pause` seconds (a durable timer), in a fresh git clone per
sample. One sample: a full `staging run` (all four pipelines), then both shards started
at once (wall time until the slower one exits), then each shard alone (what a CI matrix
gives, one machine per shard: the slower of the two). Every run must pass. Shards in
parallel here share this machine's cores and its services' start; on separate CI
machines they do not, so both figures are reported. Results go to
benchmarks/results/shards.json (+ .md).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.measure import python_env  # noqa: E402
from benchmarks.options import save_section  # noqa: E402

APP = REPO / "tests" / "integration" / "apps" / "four-pipelines"
SHARDS = 2


def make_app(root: Path, pause: float) -> Path:
    """A committed clone of the four-pipeline app whose pipelines pause `pause` seconds."""
    app = root / "quad"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns(".staging", "__pycache__", ".env"))
    pyproject = app / "pyproject.toml"
    text = re.sub(r"args = \[[0-9.]+\]", f"args = [{pause}]", pyproject.read_text())
    pyproject.write_text(text)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "quad"]):
        git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid", *args]
        subprocess.run(git, cwd=app, check=True, capture_output=True)
    return app


def _command(app: Path, backend: str, shard: str | None) -> list[str]:
    command = [sys.executable, "-m", "staging", "run", "--project", str(app)]
    command += ["--backend", backend, "--json"]
    return command + (["--shard", shard] if shard else [])


def timed(apps: list[Path], backend: str, shards: list[str | None], state: Path) -> float:
    """Wall time of these runs started together, until the last exits; each must pass."""
    env = python_env()
    env["STAGING_STATE_DIR"] = str(state)
    env.pop("STAGING_GATE_KEY", None)
    begin = time.monotonic()
    procs = [
        subprocess.Popen(
            _command(app, backend, shard),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        for app, shard in zip(apps, shards, strict=True)
    ]
    outputs = [p.communicate()[0] for p in procs]
    wall = time.monotonic() - begin
    for proc, out, shard in zip(procs, outputs, shards, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(
                f"staging run {'--shard ' + shard if shard else ''} exited {proc.returncode}: "
                f"{out.decode(errors='replace')[-2000:]}"
            )
    return wall


def one_sample(backend: str, pause: float, state: Path) -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    try:
        apps = [make_app(scratch / str(i), pause) for i in range(SHARDS + 1)]
        specs: list[str | None] = [f"{k}/{SHARDS}" for k in range(1, SHARDS + 1)]
        full = timed(apps[:1], backend, [None], state)
        parallel = timed(apps[1:], backend, specs, state)
        alone = [
            timed([app], backend, [spec], state) for app, spec in zip(apps[1:], specs, strict=True)
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "full": full,
        "parallel": parallel,
        "machines": max(alone),
        "speedup_parallel": full / parallel,
        "speedup_machines": full / max(alone),
    }


def measure(backend: str, runs: int, pause: float) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="bench-shards-state-", dir="/tmp"))
    state.chmod(0o755)  # Postgres runs as nobody when the harness is root
    try:
        scratch = Path(tempfile.mkdtemp(prefix="bench-shards-warm-"))
        try:  # warm-up, discarded: the process backend builds its Postgres template once
            timed([make_app(scratch, pause)], backend, [None], state)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        samples = [one_sample(backend, pause, state) for _ in range(runs)]
    finally:
        shutil.rmtree(state, ignore_errors=True)
    row: dict[str, Any] = {
        "backend": backend,
        "runs": runs,
        "pause": pause,
        "shards": SHARDS,
        "load": os.getloadavg()[0],
    }
    for key in samples[0]:
        values = [s[key] for s in samples]
        row[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return row


def _cell(row: dict[str, Any], key: str, ratio: str) -> str:
    s = row[key]
    return f"{s['median']:.2f}s ({s['min']:.2f}-{s['max']:.2f}), {row[ratio]['median']:.2f}x faster"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | runs | full run (4 pipelines) | 2 shards in parallel, one machine "
        "| slower shard alone (one machine per shard) |",
        "|---|---:|---|---|---|",
    ]
    for r in rows:
        full = r["full"]
        lines.append(
            f"| {r['backend']} | {r['runs']} "
            f"| {full['median']:.2f}s ({full['min']:.2f}-{full['max']:.2f}) "
            f"| {_cell(r, 'parallel', 'speedup_parallel')} "
            f"| {_cell(r, 'machines', 'speedup_machines')} (load {r['load']:.1f}) |"
        )
    return "\n".join(lines) + "\n"


def bench_shards(runs: int, backends: list[str], out: Path, pause: float = 2.0) -> int:
    rows = [measure(backend, max(1, runs), pause) for backend in backends]
    save_section(out, "shards", rows, markdown(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=["all", "process", "docker"], default="process")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds per pipeline")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "latest.json")
    args = parser.parse_args(argv)
    backends = ["process", "docker"] if args.backend == "all" else [args.backend]
    return bench_shards(args.runs, backends, args.out, args.pause)


if __name__ == "__main__":
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TC_HOST", "127.0.0.1")
    sys.exit(main())
