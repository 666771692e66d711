"""benchmarks/gallery.py's flags and table, without running anything."""

from __future__ import annotations

from benchmarks.gallery import gallery_flags, markdown


def test_gallery_flags_are_taken_out_of_the_other_sections_arguments() -> None:
    assert gallery_flags(["--runs", "2"]) == (["--runs", "2"], "run")
    assert gallery_flags(["--gallery-only", "--backend", "process"]) == (
        ["--backend", "process"],
        "only",
    )
    assert gallery_flags(["--no-gallery"]) == ([], "skip")


def test_table_marks_a_wrong_verdict() -> None:
    row = {
        "app": "single-file",
        "backend": "process",
        "init_run": {"median": 5.0, "min": 4.5, "max": 6.0},
        "green": True,
        "green_class": "",
        "incident": {"red": True, "class": "settings.secret_missing"},
        "ignored-import": {"red": False, "class": ""},
    }
    load = {"cpus": 2, "loadavg_1m": 1.0, "at": "now"}
    table = markdown({"rows": [row], "runs": 1, "load": load})
    assert "| single-file | process | 5.0 (4.5-6.0) | ✓ | ✓ `settings.secret_missing` |" in table
    assert "✗ WRONG" in table
