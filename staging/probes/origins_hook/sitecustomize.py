"""Staging's start-up hook: record where the app's own modules are imported from.

Standalone (the app's interpreter need not have `staging`). This directory is put on
the app processes' PYTHONPATH after the workspace roots; it holds only this file, and
the hook takes its directory off `sys.path` again, so the app sees neither. It also
runs, as `_staging_origins`, in every command the fork server forks.

With `STAGING_ORIGINS_OUT` (a directory) and `STAGING_ORIGINS_NAMES` (the app's
top-level names, comma-separated) set, a finder first in `sys.meta_path` asks the other
finders, in their order, for each module under those names (what the import system
itself does, so nothing resolves differently) and appends `{"module", "origin",
"finder"}` to `<out>/<pid>.jsonl`. Origins outside `STAGING_ORIGINS_HOME` also name the
distribution that installed the file. The variables are removed from the environment.

As `sitecustomize` it then runs the interpreter's own sitecustomize, which it shadows.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))


class _Recorder:
    def __init__(self, out: str, names: set[str], home: str) -> None:
        self.out = out
        self.names = names
        self.home = home

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name.partition(".")[0] not in self.names:
            return None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                self.record(name, _origin(spec), _describe(finder))
                return spec
        return None

    def invalidate_caches(self) -> None:
        return None

    def record(self, name: str, origin: str | None, finder: str) -> None:
        row: dict[str, Any] = {"module": name, "origin": origin, "finder": finder}
        if origin and not _inside(origin, self.home):
            row["distribution"] = _distribution(name.partition(".")[0])
        try:
            with open(os.path.join(self.out, f"{os.getpid()}.jsonl"), "a") as out:
                out.write(json.dumps(row) + "\n")
        except OSError:
            pass  # never the app's problem; the harness reports what it could not see


def _origin(spec: Any) -> str | None:
    if spec.origin and spec.origin not in ("built-in", "frozen", "namespace"):
        return str(spec.origin)
    locations = list(spec.submodule_search_locations or ())
    return str(locations[0]) if locations else None


def _describe(finder: Any) -> str:
    kind = finder if isinstance(finder, type) else type(finder)
    return f"{kind.__module__}.{kind.__qualname__}"


def _inside(path: str, home: str) -> bool:
    real = os.path.realpath(path)
    return real == home or real.startswith(home + os.sep)


_DISTRIBUTIONS: dict[str, list[str]] = {}


def _distribution(top: str) -> str | None:
    # Only for a module from outside the workspace (a failing run): scanning every
    # installed distribution once is affordable then.
    if not _DISTRIBUTIONS:
        try:
            from importlib.metadata import packages_distributions

            _DISTRIBUTIONS.update(packages_distributions())
        except Exception:
            return None
    found = _DISTRIBUTIONS.get(top)
    return found[0] if found else None


def install() -> None:
    out = os.environ.pop("STAGING_ORIGINS_OUT", "")
    names = os.environ.pop("STAGING_ORIGINS_NAMES", "")
    home = os.environ.pop("STAGING_ORIGINS_HOME", "")
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    if not out or not names:
        return
    recorder = _Recorder(out, set(names.split(",")), os.path.realpath(home) if home else "")
    sys.meta_path.insert(0, recorder)
    for name, module in list(sys.modules.items()):  # imported before the hook (preloads)
        spec = getattr(module, "__spec__", None)
        if name.partition(".")[0] in recorder.names and spec is not None:
            recorder.record(name, _origin(spec), "already imported")


def _chain() -> None:
    """Run the sitecustomize this file shadows, as the interpreter would have."""
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec

    spec = PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None:
        return
    module = module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


install()
if __name__ == "sitecustomize":
    _chain()
