"""The web process's HTTP server (`switchboard/http_protocol.py`) on a loopback port, its event
loop on a thread of the test process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import uvloop

from switchboard.http_protocol import HttpProtocol, Incoming, Limits, Outgoing, Site, WsgiApp, sweep


class LoopServer:
    def __init__(
        self,
        app: WsgiApp,
        limits: Limits,
        inline: Callable[[str, bytes], bool],
        direct: Callable[[Incoming], Outgoing | None] | None = None,
    ) -> None:
        self.limits = limits
        self.connections: set[HttpProtocol] = set()
        self.pool = ThreadPoolExecutor(4)
        self.loop = uvloop.new_event_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        site = Site(app, limits, inline, self.pool, "127.0.0.1", str(self.port), direct)

        def made() -> HttpProtocol:
            protocol = HttpProtocol(site)
            self.connections.add(protocol)
            return protocol

        self.server = self.loop.run_until_complete(self.loop.create_server(made, sock=listener))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def sweep(self) -> None:
        self.loop.call_soon_threadsafe(sweep, self.connections, self.limits)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.pool.shutdown()
