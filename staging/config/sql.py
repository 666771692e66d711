"""A SQL check is exactly one statement.

`select true; drop table t` once passed a run and dropped the table: a check is an
assertion, so it must be one statement, judged on its one row. This finds the statement
boundaries the way Postgres' lexer does for the parts that can hide a `;`: string
literals ('...' with '' inside, E'...' with backslash escapes), quoted identifiers,
dollar-quoted bodies ($$...$$, $tag$...$tag$), and comments (-- to the end of the line,
nested /* */). A `;` inside any of those is text; one trailing `;` is allowed.

Dependency-free on purpose: config loading calls it before any service starts.
"""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


class NotOneStatement(ValueError):
    """The text is empty, holds several statements, or does not end where it should."""


def single_statement(sql: str) -> str:
    """`sql` without its trailing `;` (and what follows it: blanks, comments).

    Raises `NotOneStatement` naming what was found: nothing, a second statement (with
    its start), or an unterminated quote or comment.
    """
    end = _first_semicolon(sql)
    if end is None:
        statement = sql
    else:
        rest = sql[end + 1 :]
        if _first_semicolon(rest) is not None or _strip_comments(rest).strip():
            second = _strip_comments(rest).strip().split(";")[0].strip() or ";"
            raise NotOneStatement(
                f"a second statement starts after the ';' at character {end + 1}: {second[:60]!r}"
            )
        statement = sql[:end]
    if not _strip_comments(statement).strip():
        raise NotOneStatement("no statement: the check is empty")
    return statement.strip()


def _first_semicolon(sql: str) -> int | None:
    """Index of the first `;` outside literals, identifiers and comments."""
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char == ";":
            return i
        if char in "'\"":
            escapes = char == "'" and i > 0 and sql[i - 1] in "eE" and not _word_char(sql, i - 2)
            i = _after_quoted(sql, i, char, backslash=escapes)
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline == -1 else newline + 1
        elif sql.startswith("/*", i):
            i = _after_block_comment(sql, i)
        elif char == "$" and not _word_char(sql, i - 1):
            i = _after_dollar_quoted(sql, i)
        else:
            i += 1
    return None


def _word_char(sql: str, i: int) -> bool:
    return i >= 0 and (sql[i].isalnum() or sql[i] in "_$")


def _after_quoted(sql: str, start: int, quote: str, *, backslash: bool) -> int:
    i = start + 1
    while i < len(sql):
        if backslash and sql[i] == "\\":
            i += 2
            continue
        if sql[i] == quote:
            if sql.startswith(quote * 2, i):  # '' or "" stands for the quote itself
                i += 2
                continue
            return i + 1
        i += 1
    kind = "string literal" if quote == "'" else "quoted identifier"
    raise NotOneStatement(f"an unterminated {kind} starting at character {start + 1}")


def _after_block_comment(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise NotOneStatement(f"an unterminated /* comment starting at character {start + 1}")


def _after_dollar_quoted(sql: str, start: int) -> int:
    tag = _DOLLAR_TAG.match(sql, start)
    if tag is None:  # a positional parameter ($1) or a lone $: ordinary text
        return start + 1
    close = sql.find(tag.group(0), tag.end())
    if close == -1:
        raise NotOneStatement(
            f"an unterminated dollar-quoted string {tag.group(0)} at character {start + 1}"
        )
    return close + len(tag.group(0))


def _strip_comments(sql: str) -> str:
    """`sql` with its comments removed (only used on text known to hold no literal `;`)."""
    out, i = [], 0
    while i < len(sql):
        if sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = len(sql) if newline == -1 else newline + 1
        elif sql.startswith("/*", i):
            i = _after_block_comment(sql, i)
        else:
            out.append(sql[i])
            i += 1
    return "".join(out)
