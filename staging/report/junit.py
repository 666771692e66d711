"""`junit.xml`: one test case per phase, per pipeline and per check, so CI shows them natively.

A failed phase carries `<failure>` (the app is broken), an aborted one `<error>` (config
or infrastructure), each with `message="class: cause"` and the evidence plus `Hint:` as
text. Skipped phases and phases the run never reached are `<skipped/>`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# Mirrors the names of staging.phases.RUN_PHASES (a unit test keeps them equal); importing
# it here would pull every phase's dependencies into rendering a report.
PHASES = (
    "config",
    "services",
    "workspace",
    "preflight",
    "replay",
    "setup",
    "worker",
    "pipelines",
    "checks",
)
# XML 1.0 forbids most control characters; a process's output may contain them (ANSI codes).
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: Any, redact: Callable[[str], str]) -> str:
    return _INVALID_XML.sub("", redact(str(text)))


def _seconds(value: Any) -> str:
    try:
        return f"{float(value):.3f}"
    except (TypeError, ValueError):
        return "0.000"


def _timestamp(value: Any) -> str:
    """JUnit's XSD wants a plain ISO-8601 local time without zone or fraction (UTC here)."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return ""
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S")


class _Suite:
    def __init__(self, redact: Callable[[str], str]) -> None:
        self.redact = redact
        self.cases: list[ET.Element] = []
        self.counts = {"failures": 0, "errors": 0, "skipped": 0}

    def case(self, classname: str, name: str, duration: Any = 0) -> ET.Element:
        element = ET.Element(
            "testcase",
            classname=classname,
            name=_clean(name, self.redact),
            time=_seconds(duration),
        )
        self.cases.append(element)
        return element

    def fail(self, case: ET.Element, diagnosis: dict[str, Any], *, error: bool = False) -> None:
        klass = str(diagnosis.get("class") or "failed")
        cause = str(diagnosis.get("cause") or "")
        body = [str(e) for e in diagnosis.get("evidence") or ()]
        if diagnosis.get("hint"):
            body.append(f"Hint: {diagnosis['hint']}")
        tag = "error" if error else "failure"
        child = ET.SubElement(
            case, tag, message=_clean(f"{klass}: {cause}", self.redact), type=_clean(klass, str)
        )
        child.text = _clean("\n".join(body), self.redact)
        self.counts["errors" if error else "failures"] += 1

    def skip(self, case: ET.Element, reason: str) -> None:
        ET.SubElement(case, "skipped", message=_clean(reason, self.redact))
        self.counts["skipped"] += 1


def render_junit(verdict: dict[str, Any], redact: Callable[[str], str] = str) -> str:
    suite = _Suite(redact)
    phases = [p for p in verdict.get("phases") or () if isinstance(p, dict)]
    seen = {p.get("name") for p in phases}
    stopped_at = next(
        (p.get("name") for p in phases if p.get("status") in ("failed", "aborted")), None
    )
    diagnosed = False
    for phase in phases:
        case = suite.case("staging.phases", str(phase.get("name")), phase.get("duration"))
        status = phase.get("status")
        if status in ("failed", "aborted"):
            diagnosis = phase.get("diagnosis") or verdict.get("diagnosis") or {}
            suite.fail(case, diagnosis, error=status == "aborted")
            diagnosed = True
        elif status == "skipped":
            suite.skip(case, str((phase.get("details") or {}).get("reason") or "skipped"))
    why = f"not reached: the run stopped at {stopped_at}" if stopped_at else "not reached"
    if not stopped_at and verdict.get("diagnosis"):
        why = f"not reached: {verdict['diagnosis'].get('class')}"
    for name in PHASES:
        if name not in seen and verdict.get("status") != "passed":
            suite.skip(suite.case("staging.phases", name), why)
    if verdict.get("diagnosis") and not diagnosed:
        # Interrupted (or failed outside any phase): the run itself is the failing case.
        suite.fail(
            suite.case("staging", "run", verdict.get("duration")),
            verdict["diagnosis"],
            error=verdict.get("status") == "aborted",
        )

    by_phase = {p.get("name"): p.get("diagnosis") for p in phases}
    for pipeline in verdict.get("pipelines") or ():
        name = str(pipeline.get("name"))
        case = suite.case("staging.pipelines", name, pipeline.get("duration"))
        status = pipeline.get("status")
        if status == "failed":
            suite.fail(
                case,
                by_phase.get("pipelines")
                or {"class": "pipeline.failed", "cause": f"pipeline {name!r} failed"},
            )
        elif status != "passed":
            suite.skip(case, f"pipeline {status}")
        for check in pipeline.get("checks") or ():
            sql = str(check.get("check"))
            check_case = suite.case(f"staging.checks.{name}", sql)
            if not check.get("ok"):
                diagnosis = by_phase.get("checks") or {}
                if sql not in str(diagnosis.get("cause", "")):
                    diagnosis = {
                        "class": "check.failed",
                        "cause": f"check `{sql}` returned {check.get('value')}",
                    }
                suite.fail(check_case, diagnosis)

    total = len(suite.cases)
    attrs = {
        "tests": str(total),
        **{k: str(v) for k, v in suite.counts.items()},
        "time": _seconds(verdict.get("duration")),
    }
    root = ET.Element("testsuites", {"name": "staging", **attrs})
    stamp = _timestamp(verdict.get("started_at"))
    testsuite = ET.SubElement(root, "testsuite", {"name": "staging", **attrs, "timestamp": stamp})
    properties = ET.SubElement(testsuite, "properties")
    tree = verdict.get("tree") or {}
    for key, value in (
        ("run_id", verdict.get("run_id")),
        ("status", verdict.get("status")),
        ("tree", tree.get("hash")),
        ("commit", tree.get("commit")),
        ("backend", verdict.get("backend")),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=key, value=_clean(value, redact))
    testsuite.extend(suite.cases)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
