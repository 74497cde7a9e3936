"""A TCP proxy to a Redis on a thread of the test process, which can stall: while stalled it
takes connections and bytes, forwards nothing and keeps every connection open, as a Redis
that hangs (or a network that drops packets) looks to its clients."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading


class StallingProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._flowing.set()
        listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = listener.getsockname()[1]
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._connected, sock=listener)
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stall(self) -> None:
        self.loop.call_soon_threadsafe(self._flowing.clear)

    def flow(self) -> None:
        self.loop.call_soon_threadsafe(self._flowing.set)

    def close(self) -> None:
        self.flow()
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._flowing.wait()
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()
