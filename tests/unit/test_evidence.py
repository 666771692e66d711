"""Evidence leads with the deciding line: the last exception of an output, app frames
next, the rest folded, staging's own frames never shown (issue 12)."""

from __future__ import annotations

from pathlib import Path

from staging.evidence import (
    build_evidence,
    deciding_line,
    frame_kind,
    headline_for_cause,
    last_traceback,
)

FIXTURES = Path(__file__).parent / "temporal" / "fixtures"
SITE = "/venv/lib/python3.11/site-packages"

# What a forked setup command prints: 12 fork-server/runpy/importlib frames first, the
# app's frames, a library's frames, and the exception line last.
FORKED_SETUP = f"""\
INFO migrate: connecting
Traceback (most recent call last):
  File "/work/main/staging/forkserver/server.py", line 210, in _child
    runpy.run_module(module, run_name="__main__", alter_sys=True)
  File "<frozen runpy>", line 226, in run_module
  File "<frozen runpy>", line 98, in _run_module_code
  File "<frozen runpy>", line 88, in _run_code
  File "/ws/app/everflow/migrate.py", line 42, in <module>
    main()
  File "/ws/app/everflow/migrate.py", line 30, in main
    with psycopg.connect(settings.dsn) as conn:
         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "{SITE}/psycopg/connection.py", line 119, in connect
    raise last_ex.with_traceback(None)
psycopg.OperationalError: connection failed: FATAL:  password authentication failed for user "app"
"""

CHAINED = f"""\
Traceback (most recent call last):
  File "{SITE}/sqlalchemy/engine/base.py", line 145, in __init__
    self._dbapi_connection = engine.raw_connection()
psycopg.OperationalError: connection refused

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/ws/app/everflow/db.py", line 7, in connect
    return engine.connect()
  File "{SITE}/sqlalchemy/engine/base.py", line 3273, in connect
    return self._connection_cls(self)
sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection refused
"""

HANDLING = """\
Traceback (most recent call last):
  File "/ws/app/everflow/settings.py", line 3, in <module>
    URL = os.environ["DATABASE_URL"]
KeyError: 'DATABASE_URL'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/ws/app/everflow/settings.py", line 5, in <module>
    raise RuntimeError("no database configured")
RuntimeError: no database configured
"""


def test_the_exception_line_comes_first_and_staging_frames_are_dropped() -> None:
    evidence = build_evidence(FORKED_SETUP, root="/ws/app", log="logs/setup-migrate.log")

    assert evidence[0] == (
        "psycopg.OperationalError: connection failed: FATAL:  password authentication "
        'failed for user "app"'
    )
    assert (
        evidence[1]
        == "at everflow/migrate.py:30 in main: with psycopg.connect(settings.dsn) as conn:"
    )
    assert evidence[2] == "at everflow/migrate.py:42 in <module>: main()"
    assert evidence[-1] == (
        "… folded: 1 library frame, 1 earlier output line (full output: logs/setup-migrate.log)"
    )
    shown = "\n".join(evidence)
    assert "forkserver" not in shown and "runpy" not in shown


def test_the_console_limit_applies_after_selection() -> None:
    """Even a huge traceback puts the deciding line within the console's first 12 lines."""
    noise = "".join(
        f'  File "{SITE}/lib{i}/mod.py", line {i}, in f{i}\n    call{i}()\n' for i in range(300)
    )
    text = FORKED_SETUP.replace("psycopg.OperationalError", noise + "psycopg.OperationalError")

    evidence = build_evidence(text)[:12]

    assert any("password authentication failed" in line for line in evidence)
    assert any("301 library frames" in line for line in evidence)


def test_the_last_exception_block_wins_over_an_earlier_one() -> None:
    earlier = (
        'Traceback (most recent call last):\n  File "/ws/a.py", line 1, in f\nValueError: old\n'
    )
    text = earlier + "retrying...\n" + FORKED_SETUP

    assert deciding_line(text) is not None
    assert "password authentication failed" in (deciding_line(text) or "")


def test_a_chain_leads_with_its_root_cause_then_what_it_was_raised_as() -> None:
    tb = last_traceback(CHAINED)
    assert tb is not None and len(tb.blocks) == 2

    evidence = build_evidence(CHAINED, root="/ws/app")

    assert evidence[0] == "psycopg.OperationalError: connection refused"
    assert evidence[1] == (
        "raised as: sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection refused"
    )
    assert evidence[2] == "at everflow/db.py:7 in connect: return engine.connect()"


def test_during_handling_keeps_both_the_original_and_the_new_error() -> None:
    evidence = build_evidence(HANDLING, root="/ws/app")

    assert evidence[0] == "KeyError: 'DATABASE_URL'"
    assert evidence[1] == "then, while handling it: RuntimeError: no database configured"


def test_multi_line_messages_are_kept_up_to_a_bound() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/ws/app/s.py", line 9, in <module>\n'
        "    settings = Settings()\n"
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings\n"
        "db_password\n"
        "  Field required [type=missing, input_value={}, input_type=dict]\n"
        "2026-12-01 04:00:00 INFO worker stopped\n"
    )

    evidence = build_evidence(text)

    assert evidence[0].endswith("1 validation error for Settings")
    assert evidence[1:3] == (
        "  db_password",
        "  Field required [type=missing, input_value={}, input_type=dict]",
    )
    assert not any("worker stopped" in line for line in evidence)


def test_output_without_a_traceback_keeps_its_tail_and_names_the_failing_line() -> None:
    text = "\n".join(
        [f"line {i}" for i in range(40)] + ['ERROR: relation "x" does not exist', "bye"]
    )

    evidence = build_evidence(text, tail=5)

    assert evidence[0] == 'ERROR: relation "x" does not exist'
    assert evidence[-1] == "… 37 earlier output lines folded"
    assert headline_for_cause(text) == ': ERROR: relation "x" does not exist'


def test_nothing_to_say_gives_an_empty_headline() -> None:
    assert headline_for_cause("all good\n") == ""
    assert deciding_line("") is None


def test_a_real_worker_import_error_leads_with_the_import_error() -> None:
    text = (FIXTURES / "module_not_found.output.txt").read_text()

    evidence = build_evidence(text, root="/app")

    assert evidence[0] == "ModuleNotFoundError: No module named 'everflow_missing_dependency'"
    assert (
        evidence[1] == "at wf_module_not_found.py:1 in <module>: import everflow_missing_dependency"
    )


def test_frame_kinds() -> None:
    assert frame_kind("/work/main/staging/forkserver/server.py") == "staging"
    assert frame_kind("/work/main/staging/probes/settings_probe.py") == "staging"
    assert frame_kind("<frozen importlib._bootstrap>") == "staging"
    assert frame_kind("<frozen importlib._bootstrap_external>") == "staging"
    assert frame_kind("/usr/lib/python3.11/runpy.py") == "staging"
    assert frame_kind(f"{SITE}/psycopg/connection.py") == "library"
    assert frame_kind("/usr/lib/python3.11/configparser.py") == "library"
    assert frame_kind("/ws/app/everflow/migrate.py") == "app"


def test_an_escaped_traceback_inside_a_log_record_is_read() -> None:
    record = (
        '{"msg": "failed", "exc": "' + FORKED_SETUP.replace("\n", "\\n").replace('"', '\\"') + '"}'
    )

    assert "password authentication failed" in (deciding_line(record) or "")
