"""Report where each field of the app's pydantic-settings class gets its value.

Runs in the app's interpreter, with cwd = the app's workspace, as the app would load it:

    python settings_probe.py --settings pkg.module:Settings [--required a,b] [--out PATH]

It must not import `staging` (the app's interpreter may not have it): stdlib, pydantic and
pydantic-settings only. The report is one JSON document, written to `--out` or else to the
original stdout; whatever the app prints while importing goes to stderr (fd level), so the
document is never mixed with app noise. No secret value is ever written: secret-like fields
show `***`, URL passwords are masked, and the raw values of every secret-like variable are
scrubbed from all text (error messages, tracebacks) before the report is written.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

MASK = "***"
# Keep equal to staging.redact.SECRET_NAME (a unit test checks): over-masking is safe.
SECRET_NAME = re.compile(r"(pass(word)?|secret|token|key|dsn|credential)", re.IGNORECASE)
HOSTISH_NAME = re.compile(r"(^|_)(host|url|uri|address|addr|dsn|endpoint|server)$", re.IGNORECASE)
# Greedy up to the last "@": an unescaped password may itself contain "@", ":" or "/".
URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>.*)@")
# Built-in sources, most specific class first (DotEnv and NestedSecrets subclass Env).
SOURCE_LABELS = (
    ("DefaultSettingsSource", "default"),
    ("InitSettingsSource", "init"),
    ("NestedSecretsSettingsSource", "secrets_dir"),
    ("DotEnvSettingsSource", "dotenv"),
    ("EnvSettingsSource", "environment"),
    ("SecretsSettingsSource", "secrets_dir"),
)
TRACEBACK_LINES = 25


def mask_url(text: str) -> str:
    return URL_USERINFO.sub(
        lambda m: f"{m['scheme']}{m['user']}:{MASK}@" if m["pw"] else m[0], text
    )


def is_secret_type(annotation: Any) -> bool:
    if isinstance(annotation, type) and any(
        c.__name__ in ("SecretStr", "SecretBytes", "Secret", "_SecretBase")
        for c in annotation.__mro__
    ):
        return True
    return any(is_secret_type(arg) for arg in get_args(annotation))


def type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not get_args(annotation):
        return annotation.__name__
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(\w+)", r"\1", repr(annotation))


def unwrap(value: Any) -> Any:
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else value


def is_empty(value: Any) -> bool:
    value = unwrap(value)
    return value is None or (
        isinstance(value, str | bytes | list | dict | tuple | set) and not value
    )


def plain(value: Any) -> Any:
    """JSON-able form of a value: models dumped, URLs and other objects as strings."""
    value = unwrap(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def masked(value: Any, secret: bool) -> Any:
    """A JSON-able value with secrets replaced; keys of nested dicts decide secrecy too."""
    if isinstance(value, dict):
        return {k: masked(v, secret or bool(SECRET_NAME.search(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, secret) for v in value]
    if secret:
        return value if value in (None, "") else MASK
    return mask_url(value) if isinstance(value, str) else value


def render(value: Any, secret: bool) -> str | None:
    data = masked(plain(value), secret)
    if data is None:
        return None
    return data if isinstance(data, str) else json.dumps(data)


def default_repr(value: Any, secret: bool) -> str:
    data = masked(plain(value), secret)
    return repr(data) if isinstance(data, str) or data is None else json.dumps(data)


def target(name: str, value: Any) -> tuple[str | None, int | None]:
    """The host (and port) a URL- or host-like value points at; read from the masked URL."""
    raw = plain(value)
    if not isinstance(raw, str) or not raw or any(c.isspace() for c in raw.strip()):
        return None, None
    text = mask_url(raw.strip())
    if "://" not in text:
        if not HOSTISH_NAME.search(name):
            return None, None
        text = "//" + text.split("/", 1)[0].rpartition("@")[2]
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None, None
    return (host or None), port


def source_label(source: Any) -> str:
    import pydantic_settings
    import pydantic_settings.sources

    for class_name, label in SOURCE_LABELS:
        cls = getattr(pydantic_settings.sources, class_name, None) or getattr(
            pydantic_settings, class_name, None
        )
        if isinstance(cls, type) and isinstance(source, cls):
            return label
    return str(getattr(source, "__name__", None) or type(source).__name__)


def build_sources(cls: Any) -> tuple[Any, ...]:
    """The sources `cls()` uses, in priority order, built the way pydantic-settings does."""
    init = getattr(cls, "_settings_init_sources", None)
    if callable(init):
        sources, _kwargs = init()
        return tuple(sources)
    # Older 2.x builds them inside `_settings_build_values`; every built-in source falls back
    # to the same model_config values when given only the class.
    import pydantic_settings as ps

    sources = cls.settings_customise_sources(
        cls,
        init_settings=ps.InitSettingsSource(cls, init_kwargs={}),
        env_settings=ps.EnvSettingsSource(cls),
        dotenv_settings=ps.DotEnvSettingsSource(cls),
        file_secret_settings=ps.SecretsSettingsSource(cls),
    )
    default = getattr(ps, "DefaultSettingsSource", None)
    return tuple(sources) + ((default(cls),) if default is not None else ())


def deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in update.items():
        if isinstance(result.get(key), dict) and isinstance(value, dict):
            result[key] = deep_update(result[key], value)
        else:
            result[key] = value
    return result


def call_sources(
    sources: tuple[Any, ...], warnings: list[str]
) -> list[tuple[str, Any, dict[str, Any]]]:
    """Ask every source what it provides, mirroring `BaseSettings._settings_build_values`."""
    state: dict[str, Any] = {}
    states: dict[str, dict[str, Any]] = {}
    provided = []
    for source in sources:
        for hook, arg in (("_set_current_state", state), ("_set_settings_sources_data", states)):
            if callable(getattr(source, hook, None)):
                getattr(source, hook)(arg)
        label = source_label(source)
        try:
            data = dict(source())
        except Exception as exc:
            warnings.append(f"source {label} raised {type(exc).__name__}")
            data = {}
        states[str(getattr(source, "__name__", None) or type(source).__name__)] = data
        state = deep_update(data, state)
        provided.append((label, source, data))
    return provided


def names_of(field_name: str, info: Any) -> list[str]:
    """Keys a source may use for a field: its name, alias and validation aliases."""
    names = [field_name]
    for alias in (getattr(info, "alias", None), getattr(info, "validation_alias", None)):
        choices = getattr(alias, "choices", None)
        for choice in choices if choices is not None else [alias]:
            path = getattr(choice, "path", None)
            first = path[0] if path else choice
            if isinstance(first, str) and first not in names:
                names.append(first)
    return names


def lookup(data: Any, path: list[list[str]], case_sensitive: bool) -> tuple[bool, Any]:
    for keys in path:
        if not isinstance(data, dict):
            return False, None
        wanted = set(keys) if case_sensitive else {k.lower() for k in keys}
        hits = [k for k in data if (k if case_sensitive else str(k).lower()) in wanted]
        if not hits:
            return False, None
        data = data[hits[0]]
    return True, data


def taken_keys(model: Any, keys: list[str]) -> list[str]:
    """The keys the model accepts for a field: its aliases, and its name unless they replace it.

    A dotenv source with extra != "forbid" also returns variables no field reads, under their
    own names: DB_PASSWORD arrives as "db_password" even when the field reads only its alias
    PGPASSWORD, and the model then drops it. Counting that key would report the field "from
    dotenv" while it holds its default.
    """
    config = getattr(model, "model_config", {})
    if len(keys) == 1 or config.get("populate_by_name") or config.get("validate_by_name"):
        return keys
    return keys[1:]


def walk_fields(
    model: Any, path: list[list[str]], prefix: str, env_names: list[str], ctx: dict[str, Any]
) -> Iterator[tuple[str, list[list[str]], Any, list[str]]]:
    """Top-level fields, then the fields of nested models as `parent.child`.

    The path holds, per level, the keys the model takes for the field (see `taken_keys`).
    """
    for name, info in model.model_fields.items():
        keys = taken_keys(model, names_of(name, info))
        if not path:
            names = ctx["env_names"](name, info)
        elif ctx["delimiter"]:
            sub = [f"{p}{ctx['delimiter']}{name}" for p in env_names]
            names = sub if ctx["case_sensitive"] else [n.lower() for n in sub]
        else:
            names = []
        yield prefix + name, [*path, keys], info, names
        nested = info.annotation
        for arg in (nested, *get_args(nested)):
            if isinstance(arg, type) and hasattr(arg, "model_fields") and len(path) < 3:
                yield from walk_fields(arg, [*path, keys], f"{prefix}{name}.", names, ctx)
                break


def env_name_reader(sources: tuple[Any, ...], cls: Any, warnings: list[str]) -> Any:
    import pydantic_settings as ps

    reader = next((s for s in sources if hasattr(s, "_extract_field_info")), None)
    if reader is None:
        reader = ps.EnvSettingsSource(cls)

    def env_names(name: str, info: Any) -> list[str]:
        try:
            return [env for _key, env, _complex in reader._extract_field_info(info, name)]
        except Exception as exc:
            warnings.append(f"env names of {name}: {type(exc).__name__}")
            return [str(cls.model_config.get("env_prefix") or "") + name]

    return env_names


def as_paths(value: Any) -> str | list[str] | None:
    """A config path setting as JSON: None, one path, or a list of paths."""
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    return [os.fspath(v) for v in value]


def path_list(value: Any) -> list[str]:
    paths = as_paths(value)
    return [] if paths is None else [paths] if isinstance(paths, str) else paths


def read_dotenv(path: str) -> dict[str, Any]:
    try:
        from dotenv import dotenv_values

        return dict(dotenv_values(Path(path).expanduser()))
    except Exception:
        return {}


def detail_for(label: str, source: Any, env_names: list[str], delimiter: str | None) -> str:
    def matches(var: str) -> bool:
        low = var.lower()
        return any(
            low == n.lower() or (delimiter and low.startswith(f"{n}{delimiter}".lower()))
            for n in env_names
        )

    if label == "environment":
        return ", ".join(sorted(v for v in os.environ if matches(v)))
    if label == "dotenv":
        for path in reversed(path_list(getattr(source, "env_file", None))):
            found = sorted(v for v in read_dotenv(path) if matches(v))
            if found:
                return f"{path}: {', '.join(found)}"
    if label == "secrets_dir":
        dirs = getattr(source, "secrets_paths", None) or path_list(
            getattr(source, "secrets_dir", None)
        )
        for directory in reversed([Path(d).expanduser() for d in dirs]):
            found = (
                sorted(str(f) for f in directory.glob("*") if matches(f.name))
                if directory.is_dir()
                else []
            )
            if found:
                return ", ".join(found)
    if label == "init":
        return "keyword argument to the class"
    return type(source).__name__ if label in ("environment", "dotenv", "secrets_dir") else ""


def model_config_report(cls: Any) -> dict[str, Any]:
    config = cls.model_config
    return {
        "env_file": as_paths(config.get("env_file")),
        "env_prefix": config.get("env_prefix") or "",
        "env_nested_delimiter": config.get("env_nested_delimiter"),
        "secrets_dir": as_paths(config.get("secrets_dir")),
        "case_sensitive": bool(config.get("case_sensitive", False)),
        "env_file_encoding": config.get("env_file_encoding"),
        "extra": config.get("extra"),
    }


def error_report(exc: BaseException, with_traceback: bool) -> dict[str, Any]:
    errors = []
    message = f"{type(exc).__name__}: {exc}"
    listing = getattr(exc, "errors", None)
    # Duck-typed: this must work even when the app's interpreter lacks pydantic.
    if type(exc).__name__ == "ValidationError" and callable(listing):
        # Never the inputs: a rejected value may be a password.
        for err in listing(include_url=False, include_context=False, include_input=False):
            loc = ".".join(str(p) for p in err["loc"])
            errors.append({"loc": loc, "msg": err["msg"], "type": err["type"]})
        message = f"{len(errors)} validation error(s) for {getattr(exc, 'title', '?')}"
    lines = "".join(traceback.format_exception(exc)).splitlines() if with_traceback else []
    tail = "\n".join(lines[-TRACEBACK_LINES:])
    return {"type": type(exc).__name__, "message": message, "errors": errors, "traceback": tail}


def collect_needles(
    provided: list[tuple[str, Any, dict[str, Any]]], report: dict[str, Any]
) -> set[str]:
    """Raw values of everything secret-like, to scrub from free text (errors, tracebacks)."""
    needles: set[str] = set()
    secret_fields = {f["name"].lower() for f in report["fields"] if f["is_secret"]}

    def add(value: Any, secret: bool, path: str = "") -> None:
        value = unwrap(value)
        secret = secret or path.lower() in secret_fields
        secret = secret or bool(SECRET_NAME.search(path.rpartition(".")[2]))
        if isinstance(value, dict):
            for k, v in value.items():
                add(v, secret, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list | tuple):
            for v in value:
                add(v, secret, path)
        elif isinstance(value, str | bytes):
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            if secret and len(text) >= 4:
                needles.add(text)
            m = URL_USERINFO.search(text)
            if m and len(m["pw"]) >= 4:
                needles.add(m["pw"])

    for name, value in os.environ.items():
        add(value, bool(SECRET_NAME.search(name)))
    for path in path_list((report.get("model_config") or {}).get("env_file")):
        for name, value in read_dotenv(path).items():
            add(value, bool(SECRET_NAME.search(name)))
    for _label, _source, data in provided:
        add(data, False)
    return needles


def scrub(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            value = value.replace(needle, MASK)
        return value
    if isinstance(value, dict):
        return {k: scrub(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, needles) for v in value]
    return value


def field_report(
    name: str,
    path: list[list[str]],
    info: Any,
    names: list[str],
    provided: list[tuple[str, Any, dict[str, Any]]],
    settings: Any,
    ctx: dict[str, Any],
) -> dict[str, Any]:
    # The first source in priority order that provides the field wins, as in deep_update.
    source, detail, found, raw = "default", "", False, None
    for label, src, data in provided:
        hit, value = lookup(data, path, ctx["case_sensitive"])
        if hit and label != "default":
            source, found, raw = label, True, value
            detail = detail_for(label, src, names, ctx["delimiter"])
            break
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    if settings is not None:
        value = settings
        for segment in name.split("."):
            value = getattr(value, segment, None)
    elif {k.lower() for k in path[0]} & ctx["invalid"]:
        value = None  # the input the class rejected: never shown, it may be a password
    else:  # the class did not load: show what the sources offered
        value = raw if found else default
    secret = (
        is_secret_type(info.annotation)
        or is_secret_type(type(value))
        or bool(SECRET_NAME.search(name.rsplit(".", 1)[-1]))
    )
    host, port = target(name, value)
    return {
        "name": name,
        "aliases": [k for k in path[-1] if k != name.rpartition(".")[2]],
        "env_names": names,
        "annotation": type_name(info.annotation),
        "is_secret": secret,
        "required": info.is_required(),
        "default": None if info.is_required() else default_repr(default, secret),
        "value": render(value, secret),
        "empty": is_empty(value),
        "source": source,
        "source_detail": detail,
        "host": host,
        "port": port,
    }


BUILTIN_LABELS = frozenset(label for _name, label in SOURCE_LABELS)
CUSTOM_READS_BUDGET = 2.0  # seconds: a custom source may be slow (a network call)
CUSTOM_READS_MAX_VARS = 64


def add_custom_reads(
    provided: list[tuple[str, Any, dict[str, Any]]],
    fields: list[dict[str, Any]],
    warnings: list[str],
) -> None:
    """Add to a field's env names the environment variables a custom source reads for it.

    A custom source may read DATABASE_URL into `db_url`, a name pydantic-settings' own rules
    never give that field; the preflight judges delivered variables by those names. Found by
    removing one unclaimed variable at a time and asking the custom sources again.
    """
    custom = [(label, src, data) for label, src, data in provided if label not in BUILTIN_LABELS]
    if not custom:
        return
    claimed = {n.lower() for f in fields for n in f["env_names"]}
    candidates = [v for v in os.environ if v.lower() not in claimed][:CUSTOM_READS_MAX_VARS]
    by_key = {
        k.lower(): f for f in fields if "." not in f["name"] for k in [f["name"], *f["aliases"]]
    }
    deadline = time.monotonic() + CUSTOM_READS_BUDGET
    for var in candidates:
        if time.monotonic() > deadline:
            warnings.append("custom sources too slow to find which variables they read")
            return
        saved = os.environ.pop(var)
        try:
            for _label, source, before in custom:
                try:
                    after = dict(source())
                except Exception:
                    continue
                for key in set(before) | set(after):
                    field = by_key.get(str(key).lower())
                    changed = before.get(key) != after.get(key)
                    if field is not None and changed and var not in field["env_names"]:
                        field["env_names"].append(var)
        finally:
            os.environ[var] = saved


def empty_report(spec: str) -> dict[str, Any]:
    keys = ("model_config", "error", "sources", "fields", "dotenv", "unknown_required", "warnings")
    report: dict[str, Any] = {k: None if k in keys[:2] else [] for k in keys}
    return {"probe_version": 1, "settings_class": spec, "ok": False, **report}


def probe(spec: str, required: list[str]) -> dict[str, Any]:
    report = empty_report(spec)
    module_name, _, qualname = spec.partition(":")
    try:
        cls: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        from pydantic_settings import BaseSettings

        if not (isinstance(cls, type) and issubclass(cls, BaseSettings)):
            raise TypeError(f"{spec} is not a pydantic-settings BaseSettings subclass")
    # BaseException: an app that calls sys.exit() while importing has a load error too.
    except BaseException as exc:
        report["error"] = error_report(exc, with_traceback=True)
        return report
    report["model_config"] = model_config_report(cls)
    settings = None
    try:
        settings = cls()
        report["ok"] = True
    except BaseException as exc:
        report["error"] = error_report(exc, with_traceback=type(exc).__name__ != "ValidationError")
    warnings: list[str] = report["warnings"]
    try:
        sources = build_sources(cls)
    except Exception as exc:
        warnings.append(f"could not rebuild the settings sources: {type(exc).__name__}")
        sources = ()
    provided = call_sources(sources, warnings)
    report["sources"] = [label for label, _s, _d in provided]
    config = cls.model_config
    ctx = {
        "env_names": env_name_reader(sources, cls, warnings),
        "delimiter": config.get("env_nested_delimiter"),
        "case_sensitive": bool(config.get("case_sensitive", False)),
        "invalid": {
            str(e["loc"]).split(".")[0].lower() for e in (report["error"] or {}).get("errors", [])
        },
    }
    wanted = {r.strip().lower() for r in required if r.strip()}
    matched: set[str] = set()
    for name, path, info, names in walk_fields(cls, [], "", [], ctx):
        entry = field_report(name, path, info, names, provided, settings, ctx)
        keys = {name.lower(), *(k.lower() for k in path[-1]), *(n.lower() for n in names)}
        entry["staging_required"] = bool(wanted & keys)
        matched |= wanted & keys
        report["fields"].append(entry)
    report["unknown_required"] = sorted(wanted - matched)
    add_custom_reads(provided, report["fields"], warnings)
    report["dotenv"] = [
        {"path": p, "exists": Path(p).expanduser().is_file(), "names": sorted(read_dotenv(p))}
        for p in path_list(config.get("env_file"))
    ]
    needles = sorted(collect_needles(provided, report), key=len, reverse=True)
    return dict(scrub(report, needles))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--settings", required=True, help="module:Class of the pydantic-settings class"
    )
    parser.add_argument(
        "--required", default="", help="comma-separated fields that must not default"
    )
    parser.add_argument("--out", help="write the JSON report here instead of stdout")
    args = parser.parse_args(argv)
    # Everything the app prints (Python or C level, subprocesses too) goes to stderr.
    sys.stdout.flush()
    report_fd = os.dup(1)
    os.dup2(2, 1)
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [os.getcwd()] + [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.argv = [sys.argv[0]]  # an app with cli_parse_args must not see the probe's flags
    try:
        report = probe(args.settings, args.required.split(","))
    except BaseException as exc:  # still answer with a document
        report = empty_report(args.settings)
        report["error"] = error_report(exc, with_traceback=True)
        report["error"]["message"] = f"settings probe failed: {type(exc).__name__}"
        report = scrub(report, sorted(collect_needles([], report), key=len, reverse=True))
    text = json.dumps(report, indent=1, default=str)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        with os.fdopen(report_fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
