"""Hold SIGINT/SIGTERM across a step that must not be cut in half.

The run turns SIGINT/SIGTERM into an exception raised in the main thread (the runner's
handler), wherever it happens to be. A few steps must complete or not happen at all: a
child process started but not yet recorded (nothing would stop it), a temp dir created
but not yet owned by a `finally` (nothing would remove it). `signals_held()` notes the
signal during such a step and raises it again on leaving, once the step's result is
owned by someone who cleans it up.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT/SIGTERM noted, then raised again on leaving; main thread only.

    Not a blocked signal mask: a child started meanwhile would inherit it and ignore the
    SIGTERM that stops it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, _: caught.append(signum)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])
