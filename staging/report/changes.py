"""What changed since it last worked: files, config-first diff hunks, settings-shape drift.

A green run leaves a snapshot of the settings *shape* (the class's model config and
each field's source); a red run compares against it and names the drift in one line,
e.g. `Settings.model_config.env_file: '.env' -> None (db_password now from default)` —
the `env_file` incident explained without reading a diff.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from staging.redact import MASK, is_secret_name

# The keys the issue names first; any other key both snapshots know is compared after.
CONFIG_KEYS = ("env_file", "env_prefix", "env_nested_delimiter", "secrets_dir", "case_sensitive")
# Credentials, not every secret-like name: a webhook URL is masked like a secret, but
# "now from default" is about what authenticates (the incident's db_password).
_CREDENTIAL = re.compile(r"(pass(word|wd)?|secret|token|key|dsn|credential)", re.IGNORECASE)
_MAX_DIFF_LINES = 400
_ASSIGNMENT = re.compile(
    r"^(?P<lead>[-+ ]\s*(?:export\s+)?)(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"(?P<sep>\s*(?::[^=\n]*)?=\s*)(?P<value>.+)$"
)
_QUOTED = re.compile(r"""(["'])(?P<s>[^"'\n]{4,})\1""")

ChangedFiles = Callable[[str, str], list[str]]  # (old tree, new tree) -> ["M path", ...]
DiffText = Callable[[str, str, Sequence[str]], str]  # (old tree, new tree, paths) -> diff


def _flag(value: Any) -> bool:
    """Provenance flags arrive as bools or as "yes"/"no" strings."""
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "true", "1")
    return bool(value)


def as_dict(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return dict(value) if isinstance(value, dict) else None


def settings_snapshot(
    verdict: dict[str, Any],
    *,
    required: Collection[str] = (),
    annotations: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """The settings shape of a run: model config + each field's source; None without preflight.

    `required` are the `[tool.staging.settings] required` names; `annotations` the
    field types from the probe (a `SecretStr` field is a credential whatever its name).
    """
    settings = verdict.get("settings") or {}
    model_config = as_dict(settings.get("model_config"))
    rows = settings.get("provenance") or []
    if model_config is None and not rows:
        return None
    wanted = {r.lower() for r in required}
    fields: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = str(row.get("field") or row.get("name") or "")
        if not name:
            continue
        annotation = (annotations or {}).get(name) or str(row.get("annotation") or "")
        fields[name] = {
            "source": str(row.get("source") or "?"),
            "secret": _flag(row.get("secret", is_secret_name(name))),
            # Credentials only (not every delivered field): the drift line names what
            # would have broken authentication, e.g. db_password now from default.
            "credential": name.lower() in wanted
            or "Secret" in annotation
            or bool(_CREDENTIAL.search(name.rsplit(".", 1)[-1])),
        }
    return {"class": settings.get("class"), "model_config": model_config or {}, "fields": fields}


def _class_name(spec: Any) -> str:
    text = str(spec or "")
    return text.rpartition(":")[2].rpartition(".")[2] or "Settings"


def drift_line(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str | None:
    """One line naming how the settings shape moved from the last green run to this one."""
    if not old or not new:
        return None
    name = _class_name(new.get("class") or old.get("class"))
    parts = []
    if old.get("class") and new.get("class") and old["class"] != new["class"]:
        parts.append(f"settings class: {old['class']} -> {new['class']}")
    old_cfg, new_cfg = old.get("model_config") or {}, new.get("model_config") or {}
    shared = sorted((set(old_cfg) & set(new_cfg)) - set(CONFIG_KEYS))
    for key in (*CONFIG_KEYS, *shared):
        before, after = old_cfg.get(key), new_cfg.get(key)
        if before != after:
            parts.append(f"{name}.model_config.{key}: {before!r} -> {after!r}")
    old_fields, new_fields = old.get("fields") or {}, new.get("fields") or {}
    lost = [
        field
        for field, now in new_fields.items()
        if now.get("source") == "default"
        and old_fields.get(field, {}).get("source") not in (None, "default")
        and (now.get("credential") or old_fields[field].get("credential"))
    ]
    suffix = f"{', '.join(lost)} now from default" if lost else ""
    if parts:
        return "; ".join(parts) + (f" ({suffix})" if suffix else "")
    return f"{name}: {suffix}" if suffix else None


@dataclass(frozen=True)
class ConfigPaths:
    """Which changed files touch configuration, derived from `[tool.staging]`."""

    settings_module: str | None = None  # "everflow.settings"
    worker_module: str | None = None  # "everflow.worker", or a script path "worker.py"

    @classmethod
    def from_config(
        cls, settings_class: str | None, worker_command: Sequence[str] | None
    ) -> ConfigPaths:
        settings = settings_class.partition(":")[0] if settings_class else None
        worker = None
        command = list(worker_command or [])
        if "-m" in command[:-1]:
            worker = command[command.index("-m") + 1]
        else:
            worker = next((a for a in command[1:] if a.endswith(".py")), None)
        return cls(settings or None, worker)

    def _module_matches(self, module: str | None, path: str) -> bool:
        if not module:
            return False
        if module.endswith(".py"):
            return path == module or path.endswith("/" + module.lstrip("./"))
        base = module.replace(".", "/")
        # Also a src/ layout, or a package whose module is its __init__/__main__.
        candidates = (f"{base}.py", f"{base}/__init__.py", f"{base}/__main__.py")
        return any(path == c or path.endswith("/" + c) for c in candidates)

    def rank(self, path: str) -> int | None:
        """Order among config-touching files (settings, .env*, pyproject, worker); None if not."""
        name = PurePosixPath(path).name
        if self._module_matches(self.settings_module, path):
            return 0
        if name.startswith(".env"):
            return 1
        if name == "pyproject.toml":
            return 2
        if self._module_matches(self.worker_module, path):
            return 3
        return None


@dataclass(frozen=True)
class Changes:
    since_run: str | None
    since_tree: str
    since_commit: str | None
    files: list[str]  # "M path" lines
    config_files: list[str]  # paths, config-touching first
    diff: str
    drift: str | None
    note: str | None = None  # why files or diffs are missing


def _path_of(change: str) -> str:
    return change.split(" ", 1)[1] if " " in change else change


def mask_assignments(diff: str) -> str:
    """Mask values of secret-named assignments in diff lines (a committed `.env` template,
    a hard-coded literal): the redactor only knows this run's secrets, not old ones."""
    out, env_style = [], False
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            env_style = PurePosixPath(line.rsplit(" b/", 1)[-1]).name.startswith(".env")
        m = None if line.startswith(("+++", "---")) else _ASSIGNMENT.match(line)
        if m and is_secret_name(m["name"]):
            value = m["value"]
            if env_style:
                value = MASK if value.strip() not in ("", '""', "''") else value
            else:
                value = _QUOTED.sub(lambda q: f"{q[1]}{MASK}{q[1]}", value)
            line = f"{m['lead']}{m['name']}{m['sep']}{value}"
        out.append(line)
    return "\n".join(out)


def _limit(text: str, max_lines: int) -> str:
    lines = text.splitlines()
    if len(lines) <= max_lines:
        return text
    return "\n".join([*lines[:max_lines], f"… {len(lines) - max_lines} more diff lines"])


def changes_since_green(
    last_green: dict[str, Any],
    verdict: dict[str, Any],
    snapshot: dict[str, Any] | None,
    *,
    paths: ConfigPaths,
    changed_files: ChangedFiles,
    diff_text: DiffText,
    max_diff_lines: int = _MAX_DIFF_LINES,
) -> Changes | None:
    """The changes between the last green tree and this run's; None if either is unknown."""
    tree = verdict.get("tree") or {}
    old, new = last_green.get("tree"), tree.get("hash")
    if not old or not new:
        return None
    drift = drift_line(last_green.get("settings"), snapshot)
    common: dict[str, Any] = {
        "since_run": last_green.get("run_id"),
        "since_tree": str(old),
        "since_commit": last_green.get("commit"),
        "drift": drift,
    }
    if old == new:
        return Changes(
            files=[],
            config_files=[],
            diff="",
            **common,
            note="the code is identical to the last green run's: the difference is in the "
            "environment (services, images, timing), not in the code",
        )
    try:
        files = changed_files(str(old), str(new))
        config = sorted(
            (p for p in map(_path_of, files) if paths.rank(p) is not None),
            key=lambda p: (paths.rank(p), p),
        )
        rest = [p for p in map(_path_of, files) if p not in config]
        diff = "\n".join(
            d
            for d in (
                diff_text(str(old), str(new), config),
                diff_text(str(old), str(new), rest) if rest else "",
            )
            if d
        )
    except Exception as exc:  # the report stays useful without the diff (e.g. a pruned tree)
        return Changes(
            files=[],
            config_files=[],
            diff="",
            **common,
            note=f"could not diff against the last green tree: {exc}",
        )
    return Changes(
        files=files,
        config_files=config,
        diff=_limit(mask_assignments(diff), max_diff_lines),
        **common,
    )


def drift_lines_for_console(changes: Changes | None) -> Iterable[str]:
    if changes is None:
        return []
    lines = [
        f"changed since the last green run ({changes.since_run}): {len(changes.files)} file(s)"
    ]
    if changes.config_files:
        lines.append(f"config-touching: {', '.join(changes.config_files)}")
    if changes.drift:
        lines.append(f"settings drift: {changes.drift}")
    return lines
