"""One lock for importing the Temporal SDK (and modules that import it) from several threads.

temporalio's package has import cycles (`temporalio.exceptions` reads `temporalio.api`
while `temporalio` itself is still initialising). Two threads importing different parts
of it at once (the warm-up thread and a readiness check) can see a partially initialised
module and fail with AttributeError. Every import that may be the first of the SDK in
the harness goes through `import_module`, so they happen one at a time.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

IMPORT_LOCK = threading.RLock()


def import_module(name: str) -> ModuleType:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    if module is not None and not getattr(spec, "_initializing", False):
        return module  # imported already: never wait behind another thread's import
    with IMPORT_LOCK:
        return importlib.import_module(name)
