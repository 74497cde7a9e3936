"""A fast customer endpoint for the benchmark: HTTP/1.1 with keep-alive on asyncio, cheap
enough that what is measured is the broker, not the receiver.

It notes when each reply first arrives, by the message number in its text (`m<n>`), and
can answer slowly on some paths or fail a share of first tries on purpose.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import zlib
from dataclasses import dataclass, field

_NUMBER = re.compile(rb"You said: m(\d+)")
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"


@dataclass
class Behaviour:
    #: Requests whose path contains this wait `slow_seconds` before their answer.
    slow_path: str = "/slow"
    slow_seconds: float = 1.0
    #: One message in this many fails its first try with a 503 (0: none), chosen by a hash
    #: of its number so that the failures fall on every conversation, not on a few.
    fail_every: int = 0


@dataclass
class Arrivals:
    """When each message's reply first arrived (monotonic seconds), and how many repeats."""

    first: dict[int, float] = field(default_factory=dict)
    requests: int = 0
    repeats: int = 0


class Receiver:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.arrivals = Arrivals()
        self._tried: set[int] = set()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self.port = 0
        threading.Thread(target=self._serve, name="receiver", daemon=True).start()
        self._started.wait(10)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self) -> None:
        self.arrivals = Arrivals()
        self._tried = set()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024)
        )
        self.port = int(server.sockets[0].getsockname()[1])
        self._started.set()
        self._loop.run_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                path = head.split(b" ", 2)[1].decode()
                writer.write(await self._answer(path, body))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _answer(self, path: str, body: bytes) -> bytes:
        if self.behaviour.slow_path in path:
            await asyncio.sleep(self.behaviour.slow_seconds)
        found = _NUMBER.search(body)
        arrivals = self.arrivals
        arrivals.requests += 1
        if found is None:
            return _OK
        number = int(found.group(1))
        every = self.behaviour.fail_every
        if every and zlib.crc32(found.group(1)) % every == 0 and number not in self._tried:
            self._tried.add(number)
            return _BUSY
        if number in arrivals.first:
            arrivals.repeats += 1
        else:
            arrivals.first[number] = time.monotonic()
        return _OK
