from __future__ import annotations

from collections.abc import Sequence

import pytest
from report_helpers import green_verdict, red_env_file_removed

from staging.report.changes import (
    ConfigPaths,
    changes_since_green,
    drift_line,
    mask_assignments,
    settings_snapshot,
)

EXPECTED = "Settings.model_config.env_file: '.env' -> None (db_password now from default)"


def test_env_file_removed_drift_is_exactly_one_line() -> None:
    old = settings_snapshot(green_verdict())
    new = settings_snapshot(red_env_file_removed())
    assert drift_line(old, new) == EXPECTED


def test_same_shape_is_no_drift() -> None:
    snap = settings_snapshot(green_verdict())
    assert drift_line(snap, snap) is None
    assert drift_line(None, snap) is None


def test_credential_lost_without_a_config_change() -> None:
    old = settings_snapshot(green_verdict())
    red = green_verdict()
    rows = red["settings"]["provenance"]
    for row in rows:
        if row["field"] == "db_password":
            row["source"] = "default"
    assert drift_line(old, settings_snapshot(red)) == "Settings: db_password now from default"


def test_required_fields_count_as_credentials() -> None:
    red = red_env_file_removed()
    old = settings_snapshot(green_verdict(), required=["db_host"])
    new = settings_snapshot(red, required=["db_host"])
    assert drift_line(old, new) == (
        "Settings.model_config.env_file: '.env' -> None (db_host, db_password now from default)"
    )


def test_secret_typed_field_is_a_credential_whatever_its_name() -> None:
    annotations = {"db_user": "SecretStr"}
    old = settings_snapshot(green_verdict(), annotations=annotations)
    new = settings_snapshot(red_env_file_removed(), annotations=annotations)
    assert "(db_user, db_password now from default)" in (drift_line(old, new) or "")


def test_several_config_keys_in_one_line() -> None:
    red = red_env_file_removed()
    red["settings"]["model_config"]["env_prefix"] = "APP_"
    line = drift_line(settings_snapshot(green_verdict()), settings_snapshot(red))
    assert line == (
        "Settings.model_config.env_file: '.env' -> None; "
        "Settings.model_config.env_prefix: '' -> 'APP_' (db_password now from default)"
    )
    assert "\n" not in line


def test_no_preflight_means_no_snapshot() -> None:
    verdict = green_verdict()
    verdict["settings"] = {"class": None, "model_config": None, "provenance": []}
    assert settings_snapshot(verdict) is None


@pytest.mark.parametrize(
    ("path", "rank"),
    [
        ("everflow/settings.py", 0),
        ("src/everflow/settings.py", 0),
        (".env.example", 1),
        ("deploy/.env.template", 1),
        ("pyproject.toml", 2),
        ("everflow/worker.py", 3),
        ("everflow/worker/__main__.py", 3),
        ("everflow/activities.py", None),
        ("README.md", None),
    ],
)
def test_config_touching_files(path: str, rank: int | None) -> None:
    paths = ConfigPaths.from_config(
        "everflow.settings:Settings", ["python", "-m", "everflow.worker"]
    )
    assert paths.rank(path) == rank


def test_worker_script_path() -> None:
    paths = ConfigPaths.from_config(None, ["python", "scripts/worker.py"])
    assert paths.rank("scripts/worker.py") == 3


def test_changes_put_config_files_first_and_carry_the_drift() -> None:
    green = green_verdict()
    last_green = {
        "tree": green["tree"]["hash"],
        "commit": green["tree"]["commit"],
        "run_id": green["run_id"],
        "settings": settings_snapshot(green),
    }
    red = red_env_file_removed()
    asked: list[list[str]] = []

    def changed(old: str, new: str) -> list[str]:
        return ["M everflow/activities.py", "M everflow/settings.py", "A .env.example"]

    def diff(old: str, new: str, paths: Sequence[str]) -> str:
        asked.append(list(paths))
        return f"diff for {', '.join(paths)}"

    changes = changes_since_green(
        last_green,
        red,
        settings_snapshot(red),
        paths=ConfigPaths.from_config("everflow.settings:Settings", None),
        changed_files=changed,
        diff_text=diff,
    )
    assert changes is not None
    assert changes.config_files == ["everflow/settings.py", ".env.example"]
    assert asked == [["everflow/settings.py", ".env.example"], ["everflow/activities.py"]]
    assert changes.drift == EXPECTED


def test_same_tree_points_at_the_environment() -> None:
    green = green_verdict()
    red = red_env_file_removed(tree=green["tree"]["hash"])
    changes = changes_since_green(
        {"tree": green["tree"]["hash"], "settings": None},
        red,
        None,
        paths=ConfigPaths(),
        changed_files=lambda o, n: pytest.fail("no diff of identical trees"),
        diff_text=lambda o, n, p: "",
    )
    assert changes is not None and changes.note and "environment" in changes.note


def test_diff_failure_is_a_note_not_a_crash() -> None:
    def broken(old: str, new: str) -> list[str]:
        raise RuntimeError("tree pruned by git gc")

    changes = changes_since_green(
        {"tree": "a" * 40},
        red_env_file_removed(),
        None,
        paths=ConfigPaths(),
        changed_files=broken,
        diff_text=lambda o, n, p: "",
    )
    assert changes is not None and "tree pruned" in (changes.note or "")


def test_masks_secret_assignments_in_diffs() -> None:
    diff = "\n".join(
        [
            "diff --git a/.env.example b/.env.example",
            "+DB_PASSWORD=hunter2hunter2",
            "+DB_HOST=localhost",
            "diff --git a/app/settings.py b/app/settings.py",
            '-    api_token: str = "tok-1234567"',
            '+    db_password: SecretStr = SecretStr("")',
            '-    env_file=".env",',
        ]
    )
    masked = mask_assignments(diff)
    assert "hunter2hunter2" not in masked and "tok-1234567" not in masked
    assert "+DB_PASSWORD=***" in masked and "+DB_HOST=localhost" in masked
    assert '+    db_password: SecretStr = SecretStr("")' in masked
    assert '-    env_file=".env",' in masked
