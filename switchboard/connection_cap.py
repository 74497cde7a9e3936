"""How many client connections a web process holds at once: all but a reserve of its file
descriptors, so that however many clients connect, it can still open its Redis connections,
files and the sockets of the routes it calls out from.

Past the cap, a new client takes the place of the connection idle the longest: a kept-alive
connection between requests, which a server may close at any time (its client connects
again when it next sends). Refusing new clients instead (no more accepts until one closes)
would leave every one of them, a health check too, waiting for idle connections to time out
(`Limits.keepalive_seconds`); and were the descriptors all taken, the event loop (libuv)
would accept and close each new connection, saying nothing. Only when no connection is
idle is a new one refused, with a `503` it can retry after.
"""

from __future__ import annotations

import asyncio
import logging
import resource

from broker.core.defaults import UNAVAILABLE_RETRY_AFTER
from switchboard.http_protocol import ErrorAnswer, HttpProtocol

log = logging.getLogger(__name__)

#: File descriptors a web process keeps for all but its clients, besides two per thread (a
#: Redis connection, and a socket or file the route it runs may open): the listening socket,
#: the event loop's own, Redis connections of the loop and of the metrics, the log, modules
#: and templates read late.
RESERVED_FDS = 64

_AT_CAP = ErrorAnswer(
    503,
    "Service Unavailable",
    "unavailable",
    "the server holds as many connections as it can; try again shortly",
    retry_after=UNAVAILABLE_RETRY_AFTER,
)


def raise_fd_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit, as far as the
    system lets it; the soft limit it has now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft


def connection_cap(fd_limit: int, threads: int) -> int:
    """The client connections a process with `fd_limit` open files and `threads` threads
    holds at once; half its descriptors at least."""
    return max(fd_limit - RESERVED_FDS - 2 * threads, fd_limit // 2)


class ConnectionCap:
    """Admits each new client connection of a web process, within `cap`."""

    def __init__(self, connections: set[HttpProtocol], cap: int) -> None:
        self.connections = connections
        self.cap = cap

    def admit(self, protocol: HttpProtocol) -> asyncio.Protocol:
        """`protocol` when it may be served, having closed the longest idle connection if
        need be; else a protocol that refuses the connection."""
        if len(self.connections) >= self.cap:
            self._forget_closed()
        if len(self.connections) >= self.cap:
            idle = self._longest_idle()
            if idle is None:
                log.warning(
                    "at the cap of %d client connections, none idle: new clients are refused "
                    "with 503",
                    self.cap,
                )
                return _Refused()
            log.warning(
                "at the cap of %d client connections: new clients take the place of the "
                "longest idle",
                self.cap,
            )
            idle.close_when_idle()
            self.connections.discard(idle)
        self.connections.add(protocol)
        return protocol

    def _forget_closed(self) -> None:
        for protocol in [p for p in self.connections if p.lost]:
            self.connections.discard(protocol)

    def _longest_idle(self) -> HttpProtocol | None:
        idle = [p for p in self.connections if p.idle]
        return min(idle, key=lambda p: p.last_active) if idle else None


class _Refused(asyncio.Protocol):
    """A connection past the cap: answered 503, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_AT_CAP.answer())
        transport.close()
