"""One turn runner of a worker process at a time takes and runs turns.

Measured with `python -m bench`, four runners taking turns side by side cost about a third
more worker CPU per message than one: each takes a smaller share of the ready list, so
batches are smaller, and the threads contend for the GIL. So they take turns one at a time;
a runner about to wait on something outside (a bot's API call, a custom action) lets the
next one go, and hands the rest of its batch to a new runner (`workers/turn_runners.py`):
a slow API holds back only the conversation that calls it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_local = threading.local()


@contextmanager
def running_turns() -> Iterator[None]:
    """Take and run turns inside: one runner of the process at a time."""
    _LOCK.acquire()
    _local.holding = True
    try:
        yield
    finally:
        let_others_run()


def holding() -> bool:
    """Whether this thread runs turns now, with no other runner beside it."""
    return bool(getattr(_local, "holding", False))


def let_others_run() -> None:
    """Before a wait on something outside: another runner may take turns from now on."""
    if holding():
        _local.holding = False
        _LOCK.release()
