"""Parsing the SDK core's non-determinism messages, on messages captured from real replays.

`core_messages.json` holds `str(replay_failure)` exactly as temporalio 1.35 produced it for
each change (see each entry's `captured`), plus, for the everflow ones, the diverging task
the replay probe reported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from staging.replay import Divergence, core_messages, locate, parse_nondeterminism

CAPTURED: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "core_messages.json").read_text(encoding="utf-8")
)


def parsed(name: str) -> Divergence:
    entry = CAPTURED[name]
    return locate(parse_nondeterminism(entry["raw"]), entry.get("task"))


def test_the_fixtures_are_raw_sdk_failures() -> None:
    for name, entry in CAPTURED.items():
        assert "Workflow activation completion failed: Failure {" in entry["raw"], name


def test_reordered_activities_name_the_recorded_event_found_in_the_task() -> None:
    raw = CAPTURED["activity_type_mismatch"]["raw"]
    bare = parse_nondeterminism(raw)
    # The message itself names no event id ...
    assert bare.event_id is None
    assert bare.detail == (
        "Activity type of scheduled event 'transform' does not match activity type of "
        "activity command 'load'"
    )
    # ... the probe's view of the diverging workflow task supplies it.
    div = parsed("activity_type_mismatch")
    assert (div.event_id, div.event_type, div.name) == (11, "ActivityTaskScheduled", "transform")
    assert div.task_completed_event_id == 10
    assert div.describe() == (
        "at event 11 (ActivityTaskScheduled): the history has activity type 'transform', "
        "but the code now issues activity type 'load'"
    )


@pytest.mark.parametrize(
    ("name", "event_id", "event_type", "produced"),
    [
        ("activity_machine_at_close", 23, "WorkflowExecutionCompleted", "schedules an activity"),
        ("timer_machine", 11, "ActivityTaskScheduled", "starts a timer"),
        ("complete_workflow_machine", 11, "ActivityTaskScheduled", "completes the workflow"),
        ("no_command_scheduled", 6, "ActivityTaskScheduled", "issues no command for it"),
    ],
)
def test_machine_messages_carry_the_event(
    name: str, event_id: int, event_type: str, produced: str
) -> None:
    div = parsed(name)
    assert (div.event_id, div.event_type, div.produced) == (event_id, event_type, produced)
    assert div.describe().startswith(f"at event {event_id}, where the history has {event_type}")
    assert div.describe().endswith(f"the code now {produced}")


def test_located_event_gets_its_name_from_the_task() -> None:
    # notify-flood: event 23 is the workflow's completion, which has no name to add.
    div = parsed("activity_machine_at_close")
    assert div.name is None
    assert div.task_completed_event_id == 22


@pytest.mark.parametrize(
    ("name", "recorded", "produced"),
    [
        ("local_activity_type_mismatch", "activity type 'a'", "activity type 'b'"),
        (
            "child_workflow_type_mismatch",
            "child workflow type 'Child'",
            "child workflow type 'Child2'",
        ),
    ],
)
def test_mismatch_messages_say_recorded_and_produced(
    name: str, recorded: str, produced: str
) -> None:
    div = parse_nondeterminism(CAPTURED[name]["raw"])
    assert (div.recorded, div.produced) == (recorded, produced)
    assert f"the history has {recorded}, but the code now issues {produced}" in div.describe()


def test_removed_patch_names_the_patch() -> None:
    div = parse_nondeterminism(CAPTURED["patch_marker_removed"]["raw"])
    assert div.patch == "p1"
    assert "no longer calls workflow.patched('p1')" in div.describe()


def test_locate_uses_the_first_marker_for_a_removed_patch() -> None:
    div = parse_nondeterminism(CAPTURED["patch_marker_removed"]["raw"])
    task = {
        "task_completed_event_id": 4,
        "events": [
            {
                "event_id": 5,
                "event_type": "MarkerRecorded",
                "name": "core_patch",
                "workflow_task_completed_event_id": 4,
            },
            {
                "event_id": 6,
                "event_type": "ActivityTaskScheduled",
                "name": "b",
                "workflow_task_completed_event_id": 4,
            },
        ],
    }
    assert locate(div, task).event_id == 5


def test_workflow_failure_messages_unwrap_the_core_dump() -> None:
    assert core_messages(CAPTURED["workflow_raises"]["raw"])[0] == "boom in workflow code"


def test_unknown_message_is_kept_verbatim_and_still_placed_in_its_task() -> None:
    div = parse_nondeterminism("[TMPRL1100] Nondeterminism error: something new entirely")
    assert div.detail == "something new entirely"
    placed = locate(div, {"task_completed_event_id": 7, "events": []})
    assert placed.describe() == (
        "in the workflow task completed at event 7: something new entirely"
    )


def test_rust_escapes_are_undone() -> None:
    raw = r'Failure { message: "a \"quoted\" path \\x and caf\u{e9}\nnext" }'
    assert core_messages(raw) == ['a "quoted" path \\x and café\nnext']


def test_a_plain_message_passes_through() -> None:
    assert core_messages("  just text ") == ["just text"]
