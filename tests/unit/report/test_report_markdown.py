from __future__ import annotations

import re

from report_helpers import green_verdict, red_env_file_removed

from staging.report.changes import Changes, drift_line, settings_snapshot
from staging.report.markdown import fence, render_markdown

EXPECTED = "Settings.model_config.env_file: '.env' -> None (db_password now from default)"


def red_changes() -> Changes:
    return Changes(
        since_run="20250101-000000-aaaaaa",
        since_tree="a" * 40,
        since_commit="c" * 40,
        files=["M everflow/activities.py", "M everflow/settings.py"],
        config_files=["everflow/settings.py"],
        diff='--- a/everflow/settings.py\n+++ b/everflow/settings.py\n-        env_file=".env",',
        drift=drift_line(
            settings_snapshot(green_verdict()), settings_snapshot(red_env_file_removed())
        ),
    )


def test_red_report_leads_with_the_diagnosis_and_shows_the_drift() -> None:
    md = render_markdown(red_env_file_removed(), changes=red_changes())
    assert md.index("settings.secret_missing") < md.index("## Phases")
    assert "**Hint:** restore env_file" in md
    assert EXPECTED in md
    assert md.index("## What changed since it last worked") < md.index("## Phases")
    # Config-touching files first in the list, then the diff.
    assert md.index("M everflow/settings.py") < md.index("M everflow/activities.py")
    assert '-        env_file=".env",' in md


def test_phase_table_and_gantt() -> None:
    md = render_markdown(red_env_file_removed())
    assert "| preflight | ❌ failed | 0.80s |" in md
    gantt = md[md.index("```mermaid") :]
    gantt = gantt[: gantt.index("```", 3) + 3]
    assert "\ngantt\n" in gantt and "dateFormat x" in gantt
    tasks = re.findall(r"^    (\S+) [\d.]+s :(\w+), p\d+, (\d+), (\d+)$", gantt, re.MULTILINE)
    assert [t[0] for t in tasks] == ["config", "services", "workspace", "preflight"]
    assert tasks[-1][1] == "crit" and tasks[0][1] == "done"
    assert (int(tasks[3][2]), int(tasks[3][3])) == (2250, 3050)


def test_settings_provenance_and_notifications() -> None:
    verdict = green_verdict()
    verdict["settings"]["provenance"][3]["value"] = "leaked?"  # a secret row never shows a value
    verdict["notifications"] = [
        {"name": "slack", "body": {"text": "Pipeline failed: everflow " + "x" * 500}}
    ] * 5
    md = render_markdown(verdict)
    assert "| db_password | dotenv | *** |" in md
    assert "leaked?" not in md
    assert "## Notifications captured: 5" in md
    assert md.count("Pipeline failed: everflow") == 3 and "… and 2 more" in md


def test_green_report_without_changes() -> None:
    md = render_markdown(green_verdict())
    assert md.startswith("# ✅ staging PASSED")
    assert "What changed" not in md and "Notifications captured: 0" in md


def test_partial_verdict_renders() -> None:
    md = render_markdown(
        {
            "run_id": "r",
            "status": "aborted",
            "tree": None,
            "phases": [],
            "settings": {"model_config": None, "provenance": []},
            "diagnosis": {"class": "config.invalid", "cause": "no [tool.staging]", "hint": "add"},
        }
    )
    assert "config.invalid" in md and "## Phases" not in md


def test_fence_cannot_be_closed_by_its_content() -> None:
    text = "a\n```\nb"
    fenced = fence(text)
    assert fenced.startswith("````\n") and fenced.endswith("\n````")
