"""The README's "Reliability" table from the fault matrix's recorded results.

    nox -s faults                    # run the matrix on both backends, then print the table
    python -m tests.faults.table     # print it from tests/faults/.results.json as it stands

One row per fault: the class and exit code (one value when both backends agree), the
seconds from the fault to the verdict on each backend, and what was left on the machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.faults.harness import RESULTS

BACKENDS = ("process", "docker")
ORDER = (
    "SIGKILL",
    "SIGINT",
    "SIGTERM",
    "postgres killed",
    "temporal killed",
    "worker killed",
    "Temporal port",
    "Postgres port",
    "state dir",
    ".staging",
    "two concurrent",
)


def _rank(fault: str) -> tuple[int, str]:
    index = next((i for i, p in enumerate(ORDER) if fault.startswith(p)), len(ORDER))
    return index, fault


def _one(values: list[Any]) -> str:
    shown = [str(v) for v in values if v is not None]
    return shown[0] if len(set(shown)) == 1 else " / ".join(shown) or "-"


def _seconds(row: dict[str, Any] | None) -> str:
    if row is None or row.get("seconds") is None:
        return "not run"
    return f"{row['seconds']:.1f}"


def render(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    faults = sorted({f for b in BACKENDS for f in results.get(b, {})}, key=_rank)
    lines = [
        "| fault | class | exit | seconds to verdict (process / docker) | leftovers |",
        "|---|---|---|---|---|",
    ]
    for fault in faults:
        rows = [results.get(b, {}).get(fault) for b in BACKENDS]
        present = [r for r in rows if r is not None]
        klass = _one([r["class"] for r in present])
        code = _one([r["exit"] for r in present])
        left = sum(int(r["leftovers"]) for r in present)
        seconds = " / ".join(_seconds(r) for r in rows)
        shown = f"`{klass}`" if "." in klass or klass == "interrupted" else klass
        lines.append(f"| {fault} | {shown} | {code} | {seconds} | {left} |")
    lines += ["", _NOTE]
    return "\n".join(lines)


_NOTE = (
    "Seconds: from the fault to the verdict on the console (teardown follows); for a taken "
    "port, a full or read-only disk and concurrent runs, from the start of the services "
    "phase or of the run. Leftovers: processes, containers, temp and state dirs, and "
    "listening ports of the run afterwards, summed over both backends (after a SIGKILL, "
    "once the next run's sweep ran)."
)


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else RESULTS
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(
            f"no fault-matrix results in {path}: {exc}\nHint: run `nox -s faults`", file=sys.stderr
        )
        return 1
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
