"""Failing fast while Redis is unreachable: once a request of this web process finds Redis
unreachable (a timeout, a connection refused or dropped), the requests that need Redis are
answered `503 unavailable` with `Retry-After` at once, without trying Redis, for
REDIS_GATE_WINDOW; after the window one request at a time goes through to try it again.

Why: the message routes are answered on the event loop, and a Redis call that waits for a
stalled Redis holds the loop until the socket times out. Without the gate, a backlog of N
requests held the loop N timeouts in a row, and gunicorn's arbiter killed the process for
not reporting in. With it, a stall holds a process's loop for at most one Redis timeout
(SWITCHBOARD_WEB_REDIS_TIMEOUT) a window.

While Redis answers, the gate costs an attribute read before a request and one after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flask import Flask, g, request

from broker.core.connection import unavailable_reason
from broker.core.defaults import REDIS_GATE_WINDOW, UNAVAILABLE_RETRY_AFTER
from broker.core.errors import Unavailable

#: The Flask endpoints that never touch Redis, or that report on it themselves (/readyz),
#: and so are answered whatever the gate says.
_WITHOUT_REDIS = frozenset({"static", "health.healthz", "health.readyz"})
_WITHOUT_REDIS_BLUEPRINTS = frozenset({"docs", "schemas"})


def refusal() -> Unavailable:
    """What a request the gate turns away raises: the 503 of an unreachable Redis."""
    return Unavailable(
        "the service's storage is unreachable; try again shortly",
        retry_after=UNAVAILABLE_RETRY_AFTER,
    )


def unreachable(error: BaseException) -> bool:
    """Whether `error` says Redis did not answer in time, or could not be connected to (a
    read-only or full Redis answers at once, and shuts no gate)."""
    return unavailable_reason(error) == "unreachable"


class RedisGate:
    """Whether a web process sends its requests to Redis now. Safe across the loop and the
    pool's threads: only a shut gate takes its lock."""

    def __init__(
        self, window: float = REDIS_GATE_WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        #: Redis answered last time: every request goes to it.
        self.open = True
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._shut_until = 0.0
        self._probing = False

    def admits(self) -> bool:
        """Whether a request may go to Redis: every one while the gate is open; while it is
        shut, one at a time once the window has passed (a probe). Each request admitted is
        `settle`d when it ends."""
        if self.open:
            return True
        with self._lock:
            if self.open:
                return True
            if self._probing or self._clock() < self._shut_until:
                return False
            self._probing = True
            return True

    def settle(self, error: BaseException | None) -> None:
        """An admitted request ended, with `error` if it failed: an unreachable Redis shuts
        the gate for the window; any other end opens it again."""
        if error is not None and unreachable(error):
            with self._lock:
                self.open = False
                self._probing = False
                self._shut_until = self._clock() + self._window
        elif not self.open:
            with self._lock:
                self.open = True
                self._probing = False


def guard_flask_routes(app: Flask, gate: RedisGate) -> None:
    """The gate for the Flask app's routes that need Redis (those on the pool's threads)."""

    @app.before_request
    def _admit() -> None:
        endpoint = request.endpoint
        if endpoint is None or endpoint in _WITHOUT_REDIS:
            return
        if request.blueprint in _WITHOUT_REDIS_BLUEPRINTS:
            return
        if not gate.admits():
            raise refusal()
        g.redis_gate_admitted = True

    @app.teardown_request
    def _settle(_error: BaseException | None) -> None:
        # The error handlers turn Redis's errors into answers: `remember_error` keeps them.
        if g.pop("redis_gate_admitted", False):
            gate.settle(g.pop("redis_error", None))


def remember_error(error: BaseException) -> None:
    """Keep the error a Flask request ended with, for the gate (`guard_flask_routes`)."""
    g.redis_error = error
