"""A SQL check is exactly one statement: the splitter, and `load_config` refusing others."""

from __future__ import annotations

from pathlib import Path

import pytest

from staging.config.load import load_config
from staging.config.sql import NotOneStatement, single_statement
from staging.errors import ConfigError
from staging.result import FailureClass


@pytest.mark.parametrize(
    ("sql", "statement"),
    [
        ("select true", "select true"),
        ("select true;", "select true"),
        ("  select true ;  \n", "select true"),
        ("select true; -- the end", "select true"),
        ("select true; /* a /* nested */ comment */", "select true"),
        ("select 'a;b' = 'a;b'", "select 'a;b' = 'a;b'"),
        ("select 'it''s; fine' <> ''", "select 'it''s; fine' <> ''"),
        ("select E'\\'; still the literal' <> ''", "select E'\\'; still the literal' <> ''"),
        ('select count(*) > 0 from "odd;table"', 'select count(*) > 0 from "odd;table"'),
        ("select $$;$$ = $$;$$", "select $$;$$ = $$;$$"),
        ("select $fn$ a; b $fn$ <> ''", "select $fn$ a; b $fn$ <> ''"),
        ("select true -- no; statement here\n", "select true -- no; statement here"),
        ("select /* ; */ true", "select /* ; */ true"),
        ("count(*) > 0 from t", "count(*) > 0 from t"),
    ],
)
def test_one_statement_is_accepted(sql: str, statement: str) -> None:
    assert single_statement(sql) == statement


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("select true; drop table t", "a second statement starts after the ';' at character 12"),
        ("select true; select false", "'select false'"),
        ("select true;;", "a second statement"),
        ("select 'a;b'; delete from t", "'delete from t'"),
        ("select true; -- x\n delete from t", "'delete from t'"),
        ("", "the check is empty"),
        ("  ; ", "the check is empty"),
        ("-- only a comment", "the check is empty"),
        ("select 'unterminated; drop table t", "unterminated string literal"),
        ("select $x$ never closed; drop table t", "unterminated dollar-quoted string $x$"),
        ("select true /* open; drop table t", "unterminated /* comment"),
    ],
)
def test_anything_else_is_refused_with_what_was_found(sql: str, problem: str) -> None:
    with pytest.raises(NotOneStatement) as info:
        single_statement(sql)
    assert problem in str(info.value)


def test_a_positional_parameter_is_not_a_dollar_quote() -> None:
    assert single_statement("select $1 > 0; ") == "select $1 > 0"


PYPROJECT = """
[tool.staging.worker]
command = ["python", "-m", "app.worker"]
task_queue = "app"

[[tool.staging.pipelines]]
name = "daily"
command = ["python", "run.py"]
checks = ["select true", {check!r}]
"""


def test_load_config_refuses_a_multi_statement_check_naming_it(tmp_path: Path) -> None:
    text = PYPROJECT.format(check="select true; drop table t").replace("'", '"')
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ={})
    err = info.value
    assert err.failure_class is FailureClass.CONFIG_INVALID
    text = str(err)
    for needle in (
        "tool.staging.pipelines[0].checks[1]",
        str(tmp_path / "pyproject.toml"),
        "exactly one statement",
        "'drop table t'",
        "select true; drop table t",
        "Hint: ",
    ):
        assert needle in text, f"{needle!r} not in:\n{text}"


def test_load_config_keeps_a_check_with_a_semicolon_in_a_literal(tmp_path: Path) -> None:
    text = PYPROJECT.format(check="select 'a;b' <> '';")  # repr: a "..." TOML string
    (tmp_path / "pyproject.toml").write_text(text)
    loaded = load_config(tmp_path, environ={})
    assert loaded.config.pipelines[0].checks[1] == "select 'a;b' <> '';"
