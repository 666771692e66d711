"""The pytest plugin's costs (issue 16), in the same invocation as the rest of `nox -s bench`.

    python benchmarks/pytest_plugin.py [--runs 3] [--backend process|docker|all] [--tests 10]

- fresh database: the setup time pytest reports for a test whose only new fixture is
  `postgres_url`, against a raw `CREATE DATABASE … TEMPLATE …` timed inside a test of the
  same session on the same server (tests interleaved, so both see the same load); target
  ≤ 2x the raw statement;
- session start: the setup time of the first test using `staging_services` (config,
  services, workspace, settings preflight, setup, template database), against the services
  phase of a `staging run` of the same app and backend (and that run's phases up to setup).

Each figure is a median (min, max) over every measurement of `--runs` sessions / runs.
Writes pytest_plugin.json and .md beside --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.options import save_section  # noqa: E402

APP = REPO / "examples" / "everflow"
SESSION_PHASES = ("config", "services", "workspace", "preflight", "setup")

CONFTEST = """
import json, os

ROWS = []


def pytest_runtest_logreport(report):
    raw = dict(report.user_properties).get("raw")
    if report.when == "setup" or raw is not None:
        ROWS.append({"test": report.nodeid.split("::")[-1], "when": report.when,
                     "setup": report.duration, "raw": raw})


def pytest_sessionfinish(session):
    with open(os.environ["BENCH_PYTEST_OUT"], "w") as fh:
        json.dump(ROWS, fh)
"""

HEAD = """
import time


def test_0_session(staging_services):
    pass
"""

PAIR = """

def test_{i}_fresh(postgres_url):
    pass


def test_{i}_raw(staging_services, record_property):
    factory = staging_services.databases()
    name = "bench_raw_{i}"
    began = time.perf_counter()
    factory.execute(f'CREATE DATABASE "{{name}}" TEMPLATE "{{factory.template}}"')
    record_property("raw", time.perf_counter() - began)
    factory.drop(name)
"""


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def _session(backend: str, tests: int, root: Path) -> list[dict[str, Any]]:
    suite = root / "suite"
    suite.mkdir(parents=True, exist_ok=True)
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_bench.py").write_text(HEAD + "".join(PAIR.format(i=i + 1) for i in range(tests)))
    out = root / "rows.json"
    env = {**os.environ, "BENCH_PYTEST_OUT": str(out)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-p",
            "no:randomly",
            str(suite),
            "--staging-project",
            str(APP),
            "--staging-backend",
            backend,
            "--staging-require",
        ],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark session failed on {backend}:\n{done.stdout[-3000:]}")
    rows: list[dict[str, Any]] = json.loads(out.read_text())
    return rows


def _run_phases(backend: str) -> dict[str, float]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "staging",
            "run",
            "--project",
            str(APP),
            "--backend",
            backend,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    verdict = json.loads(done.stdout)
    if verdict.get("status") != "passed":
        raise RuntimeError(f"staging run on {backend} did not pass: {verdict.get('diagnosis')}")
    return {p["name"]: float(p["duration"]) for p in verdict["phases"]}


def measure(backend: str, runs: int, tests: int) -> dict[str, Any]:
    fresh: list[float] = []
    raw: list[float] = []
    start: list[float] = []
    services: list[float] = []
    up_to_setup: list[float] = []
    for n in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-pytest-") as tmp:
            rows = _session(backend, tests, Path(tmp))
        start += [r["setup"] for r in rows if r["test"] == "test_0_session"]
        # The first pair still warms psycopg's connection and pytest's fixture caches.
        fresh += [r["setup"] for r in rows if r["test"].endswith("_fresh")][1:]
        raw += [float(r["raw"]) for r in rows if r["raw"] is not None][1:]
        phases = _run_phases(backend)
        services.append(phases["services"])
        up_to_setup.append(sum(phases.get(p, 0.0) for p in SESSION_PHASES))
        print(f"[bench] pytest plugin {backend} run {n + 1}/{runs} done", file=sys.stderr)
    ratio = statistics.median(fresh) / statistics.median(raw) if fresh and raw else None
    return {
        "backend": backend,
        "fresh_database": _stats(fresh),
        "raw_create_database": _stats(raw),
        "fresh_vs_raw": None if ratio is None else round(ratio, 2),
        "target_fresh_vs_raw": 2.0,
        "session_start": _stats(start),
        "run_services_phase": _stats(services),
        "run_config_to_setup": _stats(up_to_setup),
        "load": os.getloadavg()[0],
    }


def _ms(stats: dict[str, float]) -> str:
    if not stats:
        return "-"
    return f"{stats['median'] * 1000:.1f} ms ({stats['min'] * 1000:.1f}-{stats['max'] * 1000:.1f})"


def _s(stats: dict[str, float]) -> str:
    if not stats:
        return "-"
    return f"{stats['median']:.2f} s ({stats['min']:.2f}-{stats['max']:.2f})"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | fresh database (postgres_url) | raw CREATE DATABASE … TEMPLATE | ratio "
        "(target ≤ 2x) | session start | `staging run` services phase | run config→setup |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {_ms(r['fresh_database'])} | {_ms(r['raw_create_database'])} "
            f"| {r['fresh_vs_raw']}x | {_s(r['session_start'])} | {_s(r['run_services_phase'])} "
            f"| {_s(r['run_config_to_setup'])} |"
        )
    return "\n".join(lines) + "\n"


def bench_pytest_plugin(runs: int, backends: list[str], out: Path, tests: int = 10) -> int:
    rows = [measure(backend, max(1, runs), tests) for backend in backends]
    save_section(out, "pytest_plugin", rows, markdown(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=["all", "process", "docker"], default="process")
    parser.add_argument("--tests", type=int, default=10, help="fresh/raw pairs per session")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "latest.json")
    args = parser.parse_args(argv)
    backends = ["process", "docker"] if args.backend == "all" else [args.backend]
    return bench_pytest_plugin(args.runs, backends, args.out, args.tests)


if __name__ == "__main__":
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TC_HOST", "127.0.0.1")
    sys.exit(main())
