"""Where the app constructs `temporalio.worker.Worker`, and its `@workflow.defn` classes.

AST only. A worker's task queue is taken when it is a literal, a module constant
(also one imported from another app module), or a settings field with a literal default.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from staging.init.pyfiles import PyFile, has_main_block
from staging.init.settings_scan import SettingsClass

SIMPLE_ARGS: dict[str, Any] = {"str": "staging", "int": 1, "float": 1.0, "bool": False}


@dataclass
class WorkerSite:
    file: PyFile
    task_queue: str | None
    queue_source: str  # how it was found, or why not
    workflows: list[str] = field(default_factory=list)  # class names in `workflows=[...]`
    main_arg: str | None = None  # `python app.py worker` for a `__main__` switch
    runnable: bool = True  # has a `__main__` block


@dataclass(frozen=True)
class Param:
    name: str
    annotation: str
    has_default: bool


@dataclass
class WorkflowDef:
    file: PyFile
    class_name: str
    type_name: str
    params: list[Param]

    def args(self) -> list[Any] | None:
        """Arguments for a harness-started run, or None when they cannot be guessed."""
        out: list[Any] = []
        for p in self.params:
            if p.has_default:
                break  # the rest keep their defaults
            if p.annotation not in SIMPLE_ARGS:
                return None
            out.append(SIMPLE_ARGS[p.annotation])
        return out


def _imported_names(tree: ast.Module, module: str, name: str) -> tuple[set[str], set[str]]:
    """(local names bound to `module.name`, local names bound to `module`)."""
    direct: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == module:
            direct |= {a.asname or a.name for a in node.names if a.name == name}
        elif isinstance(node, ast.ImportFrom) and node.module == module.rpartition(".")[0]:
            modules |= {
                a.asname or a.name for a in node.names if a.name == module.rpartition(".")[2]
            }
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name == module and a.asname}
    return direct, modules


def _matches(func: ast.expr, direct: set[str], modules: set[str], dotted: str) -> bool:
    if isinstance(func, ast.Name):
        return func.id in direct
    text = ast.unparse(func)
    return text == dotted or any(text == f"{m}.{dotted.rpartition('.')[2]}" for m in modules)


def _constants(tree: ast.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            out[node.targets[0].id] = node.value.value
    return out


class _Queues:
    def __init__(self, files: list[PyFile], settings: list[SettingsClass]) -> None:
        self.by_module = {f.module: f for f in files if f.module}
        self.settings_defaults = {
            fl.name: fl.default
            for cls in settings
            for fl in cls.fields
            if fl.default_is_literal and isinstance(fl.default, str) and len(fl.path) == 1
        }

    def resolve(self, node: ast.expr | None, f: PyFile) -> tuple[str | None, str]:
        if node is None:
            return None, "no task_queue argument"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value, "a literal"
        if isinstance(node, ast.Name):
            return self._constant(node.id, f)
        if isinstance(node, ast.Attribute) and node.attr in self.settings_defaults:
            return self.settings_defaults[node.attr], f"the default of settings field {node.attr}"
        return None, f"`{ast.unparse(node)}` is computed at run time"

    def _constant(self, name: str, f: PyFile) -> tuple[str | None, str]:
        local = _constants(f.tree)
        if name in local:
            return local[name], f"the constant {name}"
        for node in ast.walk(f.tree):
            if isinstance(node, ast.ImportFrom) and node.module in self.by_module:
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        other = _constants(self.by_module[node.module].tree)
                        if alias.name in other:
                            return other[alias.name], f"the constant {node.module}.{alias.name}"
        for node in ast.walk(f.tree):  # `task_queue = settings.task_queue` in a function
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
                and isinstance(node.value, (ast.Attribute, ast.Constant))
            ):
                return self.resolve(node.value, f)
        return None, f"the variable {name} is not a string constant"


def worker_sites(files: list[PyFile], settings: list[SettingsClass]) -> list[WorkerSite]:
    queues = _Queues(files, settings)
    sites: list[WorkerSite] = []
    for f in files:
        if f.is_test:
            continue
        direct, modules = _imported_names(f.tree, "temporalio.worker", "Worker")
        if not direct and not modules and "temporalio.worker.Worker" not in ast.unparse(f.tree):
            continue
        for node in ast.walk(f.tree):
            if isinstance(node, ast.Call) and _matches(
                node.func, direct, modules, "temporalio.worker.Worker"
            ):
                kwargs = {kw.arg: kw.value for kw in node.keywords if kw.arg}
                queue_node = kwargs.get("task_queue")
                if queue_node is None and len(node.args) > 1:
                    queue_node = node.args[1]
                queue, how = queues.resolve(queue_node, f)
                site = WorkerSite(f, queue, how, _names_in(kwargs.get("workflows")))
                site.runnable, site.main_arg = _main_switch(f)
                sites.append(site)
    return sites


def _names_in(node: ast.expr | None) -> list[str]:
    if not isinstance(node, (ast.List, ast.Tuple)):
        return []
    return [ast.unparse(e).rpartition(".")[2] for e in node.elts]


def _main_switch(f: PyFile) -> tuple[bool, str | None]:
    """Whether the file runs as a program, and the word that selects the worker when its
    `__main__` block switches on an argument (`python app.py worker`)."""
    block = has_main_block(f.tree)
    if block is None:
        return False, None
    words = [
        n.value
        for n in ast.walk(f.tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.isidentifier()
        and _compared_or_choice(f.tree, n)
    ]  # fmt: skip
    worker_words = [w for w in words if "worker" in w.lower()]
    return True, (worker_words[0] if worker_words else None)


def _compared_or_choice(tree: ast.Module, const: ast.Constant) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and const in [node.left, *node.comparators]:
            return True
        if isinstance(node, ast.Call) and _callee_attr(node) in ("add_parser", "add_argument"):
            if const in node.args:
                return True
            for kw in node.keywords:
                if kw.arg == "choices" and const in getattr(kw.value, "elts", []):
                    return True
        if isinstance(node, ast.Dict) and const in node.keys:
            return True
        if (
            isinstance(node, ast.match_case)
            and isinstance(node.pattern, ast.MatchValue)
            and node.pattern.value is const
        ):
            return True
    return False


def _callee_attr(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else ""


def workflow_defs(files: list[PyFile]) -> list[WorkflowDef]:
    found: list[WorkflowDef] = []
    for f in files:
        if f.is_test:
            continue
        for node in f.tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            type_name = _defn_name(node)
            if type_name is None:
                continue
            found.append(WorkflowDef(f, node.name, type_name, _run_params(node)))
    return found


def _defn_name(node: ast.ClassDef) -> str | None:
    for deco in node.decorator_list:
        call = deco if isinstance(deco, ast.Call) else None
        target = call.func if call else deco
        if ast.unparse(target).rpartition(".")[2] != "defn" or "workflow" not in ast.unparse(
            target
        ) + _defn_import_hint(target):
            continue
        if call is not None:
            for kw in call.keywords:
                if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                    return str(kw.value.value)
            if call.args and isinstance(call.args[0], ast.Constant):
                return str(call.args[0].value)
        return node.name
    return None


def _defn_import_hint(target: ast.expr) -> str:
    # `from temporalio.workflow import defn` leaves a bare `@defn`: accept it.
    return "workflow" if isinstance(target, ast.Name) else ""


def _run_params(node: ast.ClassDef) -> list[Param]:
    for stmt in node.body:
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if not any(ast.unparse(d).endswith("run") for d in stmt.decorator_list):
            continue
        args = stmt.args.posonlyargs + stmt.args.args
        args = args[1:]  # self
        first_default = len(args) - len(stmt.args.defaults)
        return [
            Param(a.arg, ast.unparse(a.annotation) if a.annotation else "", i >= first_default)
            for i, a in enumerate(args)
        ]
    return []
