"""pydantic-settings classes found in the app's source, with the variables they read.

Read from the AST only: `model_config = SettingsConfigDict(...)` (or a `dict(...)`, a
literal dict, an inner `class Config`, class keywords), inherited from project bases;
fields with their defaults and aliases; nested models flattened through
`env_nested_delimiter` the way pydantic-settings reads them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from staging.init.pyfiles import PyFile

_SETTINGS_BASES = {"BaseSettings"}
_MODEL_BASES = {"BaseModel", "BaseSettings"}
_CONFIG_KEYS = ("env_prefix", "env_nested_delimiter", "env_file", "secrets_dir", "case_sensitive")
MISSING = object()


@dataclass(frozen=True)
class SettingsField:
    path: tuple[str, ...]  # ("temporal", "address") for a nested model's field
    env: str  # the variable pydantic-settings reads for it
    annotation: str
    default: Any = MISSING  # a literal default, MISSING when required, or its source text
    default_is_literal: bool = False
    nested_json: bool = False  # a nested model read as one JSON variable (no delimiter)

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def admits_none(self) -> bool:
        return "None" in self.annotation or "Optional" in self.annotation


@dataclass
class SettingsClass:
    file: PyFile
    name: str
    config: dict[str, Any]
    fields: list[SettingsField] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def target(self) -> str | None:
        return f"{self.file.module}:{self.name}" if self.file.module else None

    @property
    def env_file(self) -> str | None:
        value = self.config.get("env_file")
        if isinstance(value, (list, tuple)):  # later files win in pydantic-settings
            value = value[-1] if value else None
        return value if isinstance(value, str) else None


def _base_names(node: ast.ClassDef) -> list[str]:
    names = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def _literal(node: ast.expr | None) -> tuple[Any, bool]:
    if node is None:
        return MISSING, False
    try:
        return ast.literal_eval(node), True
    except (ValueError, SyntaxError, TypeError):
        return ast.unparse(node), False


class _Index:
    """Every class in the app by name, to follow bases and nested models across files."""

    def __init__(self, files: list[PyFile]) -> None:
        self.classes: dict[str, list[tuple[ast.ClassDef, PyFile]]] = {}
        for f in files:
            for node in f.tree.body:
                if isinstance(node, ast.ClassDef):
                    self.classes.setdefault(node.name, []).append((node, f))

    def lookup(self, name: str, near: PyFile) -> tuple[ast.ClassDef, PyFile] | None:
        found = self.classes.get(name, [])
        same = [c for c in found if c[1] is near]
        if same or len(found) == 1:
            return (same or found)[0]
        return None

    def is_kind(self, node: ast.ClassDef, f: PyFile, kinds: set[str], depth: int = 0) -> bool:
        for base in _base_names(node):
            if base in kinds:
                return True
            parent = self.lookup(base, f)
            if parent and depth < 10 and self.is_kind(*parent, kinds, depth + 1):
                return True
        return False


def _class_config(node: ast.ClassDef) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg in _CONFIG_KEYS:
            config[kw.arg] = _literal(kw.value)[0]
    for stmt in node.body:
        target, value = _assigned(stmt)
        if target == "model_config" and value is not None:
            config.update(_config_call(value))
        elif isinstance(stmt, ast.ClassDef) and stmt.name == "Config":
            for inner in stmt.body:
                key, val = _assigned(inner)
                if key in _CONFIG_KEYS and val is not None:
                    config[key] = _literal(val)[0]
    return config


def _assigned(stmt: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
        return (target.id if isinstance(target, ast.Name) else None), stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id, stmt.value
    return None, None


def _config_call(value: ast.expr) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(value, ast.Call):
        for kw in value.keywords:
            if kw.arg in _CONFIG_KEYS:
                out[kw.arg] = _literal(kw.value)[0]
    elif isinstance(value, ast.Dict):
        for k, v in zip(value.keys, value.values, strict=True):
            if isinstance(k, ast.Constant) and k.value in _CONFIG_KEYS:
                out[str(k.value)] = _literal(v)[0]
    return out


def _field_call(value: ast.expr | None) -> tuple[ast.expr | None, str | None, bool]:
    """(default node, alias, has default) of `Field(...)`, or of a plain default."""
    if not (isinstance(value, ast.Call) and _callee(value) == "Field"):
        return value, None, value is not None
    default: ast.expr | None = value.args[0] if value.args else None
    alias = None
    has_default = bool(value.args) and not _is_ellipsis(value.args[0])
    for kw in value.keywords:
        if kw.arg == "default":
            default, has_default = kw.value, not _is_ellipsis(kw.value)
        elif kw.arg == "default_factory":
            default, has_default = kw.value, True
        elif kw.arg in ("validation_alias", "alias") and alias is None:
            alias = _alias(kw.value)
    return default, alias, has_default


def _is_ellipsis(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def _alias(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and _callee(node) == "AliasChoices":
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                return arg.value
    return None


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _model_name(annotation: ast.expr) -> str | None:
    """`Nested`, `Nested | None`, `Optional[Nested]` -> "Nested"."""
    if isinstance(annotation, ast.Name):
        return annotation.id
    if isinstance(annotation, ast.BinOp):
        return _model_name(annotation.left) or _model_name(annotation.right)
    if isinstance(annotation, ast.Subscript) and ast.unparse(annotation.value) == "Optional":
        return _model_name(annotation.slice)
    return None


class _Collector:
    def __init__(self, index: _Index, config: dict[str, Any]) -> None:
        self.index = index
        self.prefix = str(config.get("env_prefix") or "")
        self.delimiter = config.get("env_nested_delimiter") or None
        self.case_sensitive = bool(config.get("case_sensitive"))

    def env_name(self, raw: str) -> str:
        return raw if self.case_sensitive else raw.upper()

    def fields(
        self, node: ast.ClassDef, f: PyFile, path: tuple[str, ...], env_head: str, depth: int = 0
    ) -> list[SettingsField]:
        out: list[SettingsField] = []
        for base in _base_names(node):  # project bases first: their fields come first
            parent = self.index.lookup(base, f)
            if parent and depth < 10:
                out.extend(self.fields(*parent, path, env_head, depth + 1))
        for stmt in node.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            name = stmt.target.id
            annotation = ast.unparse(stmt.annotation)
            if name.startswith("_") or name == "model_config" or "ClassVar" in annotation:
                continue
            out.extend(self._one(stmt, f, (*path, name), env_head, depth))
        return out

    def _one(
        self, stmt: ast.AnnAssign, f: PyFile, path: tuple[str, ...], env_head: str, depth: int
    ) -> list[SettingsField]:
        default_node, alias, has_default = _field_call(stmt.value)
        annotation = ast.unparse(stmt.annotation)
        nested_name = _model_name(stmt.annotation)
        nested = self.index.lookup(nested_name, f) if nested_name else None
        if nested and depth < 10 and self.index.is_kind(*nested, _MODEL_BASES):
            if self.delimiter:
                head = f"{env_head}{path[-1]}{self.delimiter}"
                return self.fields(*nested, path, head, depth + 1)
            return [SettingsField(path, self.env_name(env_head + path[-1]), annotation, MISSING,
                                  nested_json=True)]  # fmt: skip
        env = self.env_name(alias) if alias and len(path) == 1 else env_head + path[-1]
        default, is_literal = _literal(default_node) if has_default else (MISSING, False)
        return [SettingsField(path, self.env_name(env), annotation, default, is_literal)]


def settings_classes(files: list[PyFile]) -> list[SettingsClass]:
    """Every BaseSettings subclass in the app's (non-test) files, with its variables."""
    index = _Index(files)
    found: list[SettingsClass] = []
    for f in files:
        if f.is_test:
            continue
        for node in f.tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            if not index.is_kind(node, f, _SETTINGS_BASES):
                continue
            config = _inherited_config(index, node, f)
            collector = _Collector(index, config)
            cls = SettingsClass(file=f, name=node.name, config=config)
            cls.fields = collector.fields(node, f, (), collector.env_name(collector.prefix))
            found.append(cls)
    return found


def _inherited_config(
    index: _Index, node: ast.ClassDef, f: PyFile, depth: int = 0
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for base in _base_names(node):
        parent = index.lookup(base, f)
        if parent and depth < 10:
            config.update(_inherited_config(index, *parent, depth + 1))
    config.update(_class_config(node))
    return config
