"""Does a hint name only what exists in the app? (issue 12: hints use the app's own names)

A hint that tells a user to fix `DB_PASSWORD` in an app that reads `DATABASE_URL` sends them
the wrong way. `unknown_names(hint, AppNames.of(app))` lists the identifiers of a hint that are
neither the app's (its settings fields and the variables they read, the variables delivered
to it, the identifiers and string constants of its own code) nor staging's own vocabulary
(config keys, pydantic-settings and Temporal API words). Identifiers here are the tokens a
reader would take for a field or a variable: UPPER_CASE ones and anything with an underscore.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from staging.config.model import StagingConfig

# Words of staging's own and of the libraries its hints are about.
STAGING_WORDS = frozenset(
    {
        # pydantic-settings
        "model_config",
        "env_file",
        "env_file_encoding",
        "env_prefix",
        "env_nested_delimiter",
        "secrets_dir",
        "case_sensitive",
        "settings_customise_sources",
        "init_settings",
        "env_settings",
        "dotenv_settings",
        "file_secret_settings",
        "validation_alias",
        "populate_by_name",
        "get_secret_value",
        "cli_parse_args",
        # temporalio
        "with_passthrough_modules",
        "imports_passed_through",
        "workflow_runner",
        "task_queue",
        "start_workflow",
        "execute_activity",
        "start_to_close_timeout",
        "retry_policy",
        "maximum_attempts",
        "non_retryable_error_types",
        # Python, Postgres, alembic
        "sys_path",
        "__init__",
        "__main__",
        "set_main_option",
        "sqlalchemy_url",
        "hide_password",
        "render_as_string",
        "if_exists",
        # acronyms and staging's placeholders ({capture.NAME})
        "NAME",
        "URL",
        "URI",
        "DSN",
        "JSON",
        "SQL",
        "TLS",
        "API",
        "HTTP",
        "HTTPS",
        "PATH",
        "HOME",
        "NUL",
        "UTF",
        "TODO",
        "CWD",
        "PID",
        "TCP",
        "DNS",
        "PYTHONPATH",
        "VIRTUAL_ENV",
    }
)
_TOKEN = re.compile(r"(?<![\w-])[A-Za-z_][A-Za-z0-9_]*(?![\w])")
_PATHLIKE = re.compile(r"\S*[/\\]\S*")


def _config_keys(model: type[BaseModel]) -> Iterator[str]:
    for name, info in model.model_fields.items():
        yield name
        if info.alias:
            yield info.alias
        for arg in (info.annotation, *getattr(info.annotation, "__args__", ())):
            inner = getattr(arg, "__args__", (arg,))
            for kind in (arg, *inner):
                if isinstance(kind, type) and issubclass(kind, BaseModel):
                    yield from _config_keys(kind)


@dataclass
class AppNames:
    identifiers: set[str] = field(default_factory=set)  # code identifiers and string constants
    fields: set[str] = field(default_factory=set)  # annotated class attributes, lower case
    delivered: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, app: Path) -> AppNames:
        """The names of the app's deployable code (not its tests) and its [tool.staging]."""
        names = cls()
        for path in sorted(app.rglob("*.py")):
            rel = path.relative_to(app).parts
            if any(p in ("tests", ".staging", ".venv", "venv") for p in rel):
                continue
            names.add_code(path.read_text(encoding="utf-8", errors="replace"))
        pyproject = app / "pyproject.toml"
        if pyproject.is_file():
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            staging = data.get("tool", {}).get("staging", {})
            for table in ("env", "process_env"):
                names.delivered |= set(staging.get(table, {}))
            names.identifiers |= _keys(staging)
        return names

    def add_code(self, source: str) -> None:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                self.identifiers.add(node.id)
            elif isinstance(node, ast.Attribute):
                self.identifiers.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.identifiers.add(node.name)
            elif isinstance(node, ast.alias):
                self.identifiers |= set((node.asname or node.name).split("."))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.identifiers |= set(_TOKEN.findall(node.value))
            elif isinstance(node, ast.arg):
                self.identifiers.add(node.arg)
            if isinstance(node, ast.ClassDef):
                self.fields |= {
                    s.target.id.lower()
                    for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                }

    def knows(self, token: str) -> bool:
        if token in STAGING_WORDS or token in self.delivered or token in self.identifiers:
            return True
        if token in _STAGING_KEYS:
            return True
        # A variable a field reads: FIELD, PREFIX_FIELD, PARENT__CHILD (nested delimiter).
        return all(self._field_like(part) for part in token.lower().split("__") if part)

    def _field_like(self, part: str) -> bool:
        if part in self.fields or part in self.lowered:
            return True
        return any(part.endswith(f) and part[: -len(f)] in self.lowered for f in self.fields if f)

    @property
    def lowered(self) -> set[str]:
        return {i.lower() for i in self.identifiers}


def _keys(table: Any) -> set[str]:
    if isinstance(table, dict):
        return set(table) | {k for v in table.values() for k in _keys(v)}
    if isinstance(table, list):
        return {k for v in table for k in _keys(v)}
    return set()


_STAGING_KEYS = frozenset(_config_keys(StagingConfig))


def hint_identifiers(hint: str) -> list[str]:
    """Tokens of `hint` a reader would take for a field or a variable name."""
    text = _PATHLIKE.sub(" ", hint)
    return [
        t
        for t in dict.fromkeys(_TOKEN.findall(text))
        if "_" in t.strip("_") or (t.isupper() and len(t) >= 3)
    ]


def unknown_names(hint: str, names: AppNames) -> list[str]:
    """The identifiers of `hint` that exist neither in the app nor in staging's vocabulary."""
    return [t for t in hint_identifiers(hint) if not names.knows(t)]
