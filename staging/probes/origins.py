"""Proof that what ran is the workspace copy: where each app module was imported from.

Harness side of `origins_hook/sitecustomize.py`, which every app process (cold or forked)
runs at start-up. `origins_env` gives the variables that switch it on for one run;
`read_origins` collects what the processes recorded; `shadowed_diagnosis` turns a
module imported from outside the workspace (an editable install pointing at the
checkout, a stale copy in site-packages) into a `workspace.shadowed` failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from staging.result import Diagnosis, FailureClass

HOOK_DIR = Path(__file__).resolve().parent / "origins_hook"


@dataclass(frozen=True)
class Origin:
    module: str
    origin: str | None
    finder: str = ""
    distribution: str | None = None


def origins_env(out_dir: Path, names: Iterable[str], home: Path) -> dict[str, str]:
    """Variables that make the hook record the app's modules (it removes them at start-up)."""
    return {
        "STAGING_ORIGINS_OUT": str(out_dir),
        "STAGING_ORIGINS_NAMES": ",".join(sorted(names)),
        "STAGING_ORIGINS_HOME": str(home),
    }


def read_origins(out_dir: Path) -> list[Origin]:
    """Every module any app process recorded, once each (the first origin seen)."""
    seen: dict[str, Origin] = {}
    try:
        files = sorted(out_dir.glob("*.jsonl"))
    except OSError:
        return []
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            if isinstance(row, dict) and isinstance(row.get("module"), str):
                origin = Origin(
                    row["module"],
                    row.get("origin"),
                    str(row.get("finder") or ""),
                    row.get("distribution"),
                )
                seen.setdefault(origin.module, origin)
    return list(seen.values())


def _inside(path: str, home: Path) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(home)
    return real == base or real.startswith(base + os.sep)


def outside(origins: Iterable[Origin], home: Path) -> list[Origin]:
    return sorted(
        (o for o in origins if o.origin is not None and not _inside(o.origin, home)),
        key=lambda o: o.module,
    )


def shadowed_diagnosis(
    origins: Iterable[Origin],
    *,
    home: Path,
    checkout: Path,
    python: str,
    when: str,
    project: str | None = None,
) -> Diagnosis | None:
    """`workspace.shadowed` when an app module came from outside `home` (the workspace copy)."""
    bad = outside(origins, home)
    if not bad:
        return None
    first = bad[0]
    assert first.origin is not None
    editable = _inside(first.origin, checkout) or "editable" in first.finder
    dist = first.distribution or project or "<the app's distribution>"
    kind = "an editable install of your checkout" if editable else "an installed copy"
    cause = (
        f"{when}, module {first.module!r} was imported from {first.origin} ({kind}), "
        f"not from the workspace copy {home}: the run would test code that is not deployed"
    )
    hint = (
        f"uninstall it from the app's interpreter: {python} -m pip uninstall {dist} "
        "(or use a venv without it); staging puts the app's import roots on the path itself"
    )
    if not editable:
        hint += "; a stale copy in site-packages also hides modules missing from the tree"
    evidence = tuple(f"{o.module}: {o.origin} (found by {o.finder or '?'})" for o in bad[:10])
    return Diagnosis(FailureClass.WORKSPACE_SHADOWED, cause, hint=hint, evidence=evidence)


__all__ = [
    "HOOK_DIR",
    "Origin",
    "origins_env",
    "outside",
    "read_origins",
    "shadowed_diagnosis",
]
