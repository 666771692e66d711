"""The gallery of app shapes in `nox -s bench`: `staging init` + `staging run` wall time
per app and backend, and the green/red correctness table.

    python benchmarks/run.py --gallery-only [--runs 3] [--backend process]
    python benchmarks/run.py --no-gallery ...     # the other sections only

Each measurement is a fresh copy of the app (tests/gallery/shapes.py: copy, git commit),
timed from `staging init` to `staging run`'s exit, as a user types them. Green is
measured `runs` times (at most 3: eight apps on two backends), each red case once. Results
go beside --out as gallery.json and gallery.md.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.options import Options, save_section
from tests.gallery.shapes import EXPECTED_CODE, SHAPES, Shape, apply_fault, commit_all, copy_app

FLAGS = {"--gallery-only": "only", "--no-gallery": "skip"}


def gallery_flags(argv: Sequence[str]) -> tuple[list[str], str]:
    """(the other sections' arguments, "run" | "only" | "skip")."""
    mode = "run"
    rest = []
    for arg in argv:
        if arg in FLAGS:
            mode = FLAGS[arg]
        else:
            rest.append(arg)
    return rest, mode


def _staging(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    from benchmarks.measure import python_env  # psutil: only when measuring

    return subprocess.run(
        [sys.executable, "-m", "staging", *args],
        cwd=cwd,
        env=python_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def _run(project: Path, backend: str) -> tuple[int, str]:
    run = _staging("run", "--project", str(project), "--backend", backend, "--json", cwd=project)
    try:
        verdict = json.loads(run.stdout)
    except json.JSONDecodeError:
        return run.returncode, "no verdict"
    return run.returncode, str((verdict.get("diagnosis") or {}).get("class") or "")


def _once(shape: Shape, backend: str, fault: str, root: Path) -> tuple[float, int, str]:
    """(wall, exit code, class): green is timed from `staging init` to the run's exit;
    a fault is applied after init and a commit, as a later change to a set-up app."""
    repo = Path(tempfile.mkdtemp(prefix=f"{shape.name}-{fault}-", dir=root)) / "repo"
    try:
        project = copy_app(shape, repo)
        commit_all(repo, shape.name)
        began = time.monotonic()
        init = _staging("init", "--project", str(project))
        if init.returncode != 0:
            return time.monotonic() - began, init.returncode, f"init: {init.stderr[-300:]}"
        apply_fault(shape, project, fault)
        code, klass = _run(project, backend)
        return time.monotonic() - began, code, klass
    finally:
        shutil.rmtree(repo.parent, ignore_errors=True)


def measure(opts: Options) -> dict[str, Any]:
    from benchmarks.measure import load_snapshot

    runs = max(1, min(opts.runs, 3))
    root = Path(tempfile.mkdtemp(prefix="staging-bench-gallery-"))
    rows: list[dict[str, Any]] = []
    try:
        for shape in SHAPES:
            for backend in opts.backends:
                rows.append(_row(shape, backend, runs, root))
                print(f"[bench] gallery {shape.name} {backend}: {rows[-1]}", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"load": load_snapshot(), "runs": runs, "rows": rows}


def _row(shape: Shape, backend: str, runs: int, root: Path) -> dict[str, Any]:
    from benchmarks.measure import Stat

    walls: list[float] = []
    outcome: dict[str, Any] = {"app": shape.name, "backend": backend}
    for _ in range(runs):
        wall, code, klass = _once(shape, backend, "none", root)
        walls.append(wall)
        outcome["green"] = code == EXPECTED_CODE["none"]
        outcome["green_class"] = klass
    outcome["init_run"] = Stat.of(walls).to_dict()
    for fault in ("incident", "ignored-import"):
        wall, code, klass = _once(shape, backend, fault, root)
        outcome[fault] = {"red": code == EXPECTED_CODE[fault], "class": klass, "wall": wall}
    return outcome


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| app | backend | init + run, green (s) | green | incident (env_file removed) "
        "| git-ignored import |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        s = r["init_run"]
        cells = [
            r["app"],
            r["backend"],
            f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})",
            _mark(r["green"], r["green_class"]),
            _mark(r["incident"]["red"], r["incident"]["class"]),
            _mark(r["ignored-import"]["red"], r["ignored-import"]["class"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    load = result["load"]
    lines.append(
        f"\nMedian (min-max) of {result['runs']} init + run per app, each in a fresh copy; "
        f"{load['cpus']} CPUs, load {load['loadavg_1m']} at {load['at']}; "
        f"`{result.get('command', 'python benchmarks/run.py --gallery-only')}`."
    )
    return "\n".join(lines) + "\n"


def _mark(ok: bool, klass: str) -> str:
    return ("✓" if ok else "✗ WRONG") + (f" `{klass}`" if klass else "")


def bench_gallery(opts: Options) -> int:
    result = measure(opts)
    result["command"] = " ".join(["python benchmarks/run.py", *sys.argv[1:]])
    save_section(opts.out, "gallery", result, markdown(result))
    wrong = [r for r in result["rows"] if not _all_right(r)]
    return 1 if wrong else 0


def _all_right(row: dict[str, Any]) -> bool:
    return bool(row["green"] and row["incident"]["red"] and row["ignored-import"]["red"])
