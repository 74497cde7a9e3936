"""The outbound HTTP client: HTTP/1.1 on asyncio, with keep-alive per origin, no redirects,
outbound safety at connect time, a hard wall-clock limit on every request and a cap on
what is read.

It is written on asyncio streams rather than on a general client because a delivery is
one small POST whose answer is mostly ignored: this costs a fraction of the CPU per
request, and the deadline covers the whole request (connect, send, every read), so an
endpoint that trickles its answer is cut off on time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import string
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from broker.core import defaults
from broker.core.settings import Network
from broker.delivery.netsafety import IPAddress, is_forbidden

#: What a request target keeps as it is: every printable ASCII character but the space.
_SAFE = string.punctuation

#: An idle kept-alive connection is closed after this long (seconds) ...
_IDLE_SECONDS = 30.0
#: ... by a sweep this often, while any are kept (seconds).
_SWEEP_SECONDS = 5.0
#: Idle connections kept per origin, at most (as many as defaults.ENDPOINT_CONCURRENCY) ...
_IDLE_PER_ORIGIN = 64
#: ... and in all: past it, the longest idle is closed. The sockets a worker holds idle stay
#: bounded however many endpoints it delivered to (a worker with 1,000 receivers behind it
#: held as many sockets, and at its open-files limit could connect to none), while four
#: endpoints at their full concurrency keep all their connections.
_IDLE_KEPT = 256
#: Origins kept, at most, before those holding no idle connection are let go: the hosts a
#: bot's API calls take from conversations' variables may be many.
_ORIGINS_KEPT = 1024
#: The longest line of an answer's head, or chunk-size line, that is read.
_HEAD_LIMIT = 16 * 1024


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP request of a delivery came to."""

    status_code: int | None
    duration_ms: int
    error: str | None = None
    #: The first RESPONSE_EXCERPT_BYTES of the answer's body, for the attempt log.
    response: str | None = None
    retry_after: str | None = None
    #: The answer's body as read (up to the client's read cap): what an offload's answer
    #: is read from.
    body: bytes = b""
    #: False for an attempt used up without a request (its endpoint's circuit is open).
    sent: bool = True

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Answer:
    status: int
    #: Header names in lower case.
    headers: Mapping[str, str]
    #: The body, or as much of it as the client's read cap allowed.
    body: bytes
    #: False when the read cap cut the body short.
    complete: bool = True


class RequestFailed(Exception):
    """No answer came; `str()` says why, in words for the attempt log. `partial`: the answer's
    head and the part of its body that had come when the time limit or the connection cut
    it."""

    def __init__(self, message: str, partial: Answer | None = None) -> None:
        super().__init__(message)
        self.partial = partial


@dataclass
class _Reading:
    """An answer as far as it has been read."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)

    def answer(self) -> Answer | None:
        if self.status is None:
            return None
        return Answer(self.status, self.headers, bytes(self.body), complete=False)


class _Reusable(Exception):
    """A kept-alive connection turned out closed before anything was read: try a new one."""


@dataclass
class _Origin:
    scheme: str
    host: str
    port: int
    #: Its idle connections, the longest idle first.
    idle: deque[_Idle] = field(default_factory=deque)


@dataclass(eq=False)
class _Idle:
    origin: _Origin
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    since: float

    def fresh(self, now: float) -> bool:
        """Whether it may be used again: idle for less than _IDLE_SECONDS, and not closed by
        the other end."""
        return now - self.since < _IDLE_SECONDS and not self.reader.at_eof()


class HttpClient:
    """One per process (per event loop); safe for many concurrent requests on its loop."""

    def __init__(
        self, allowlist: Sequence[Network], user_agent: str, read_cap: int = defaults.MAX_READ_BYTES
    ) -> None:
        self._allowlist = tuple(allowlist)
        self._user_agent = user_agent
        self._read_cap = read_cap
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        #: Every origin's idle connections (a dict for its order), the longest idle first.
        self._idle: dict[_Idle, None] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._tls = ssl.create_default_context()

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        connect_timeout: float = defaults.CONNECT_TIMEOUT,
        total_timeout: float = defaults.TOTAL_TIMEOUT,
    ) -> AttemptResult:
        """POST a JSON document; never raises: a failure is the result's `error`."""
        started = time.monotonic()

        def elapsed_ms() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            answer = await self.request(
                "POST",
                url,
                body,
                {"Content-Type": "application/json", **headers},
                connect_timeout=connect_timeout,
                total_timeout=total_timeout,
            )
        except RequestFailed as exc:
            if exc.partial is None:
                return AttemptResult(None, elapsed_ms(), error=str(exc))
            # The endpoint gave its status, then its body did not come whole (the time limit
            # or the connection cut it): the status is its verdict (a 2xx is delivered), the
            # body only what it says.
            answer = exc.partial
        error = None
        if 300 <= answer.status < 400:
            error = f"redirect to {answer.headers.get('location', '?')} not followed"
        return AttemptResult(
            answer.status,
            elapsed_ms(),
            error=error,
            response=answer.body[: defaults.RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace"),
            retry_after=answer.headers.get("retry-after"),
            body=answer.body,
        )

    async def request(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        total_timeout: float,
    ) -> Answer:
        """One request, answered within `total_timeout` seconds in all, or RequestFailed."""
        try:
            parts = urlsplit(url)
            given_port = parts.port
        except ValueError as exc:  # a port out of range, a bracket left open, ...
            raise RequestFailed(f"not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RequestFailed(f"not an http(s) URL: {url}")
        if given_port == 0:
            raise RequestFailed("not a valid URL: port 0")
        scheme_port = 443 if parts.scheme == "https" else 80
        port = given_port or scheme_port
        # Text beyond ASCII goes as its UTF-8, percent-encoded, as a browser sends it.
        target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), _SAFE)
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise RequestFailed(f"not a valid host name: {parts.hostname!r}") from None
        origin = self._origin(parts.scheme, parts.hostname, port)
        if ":" in host:
            host = f"[{host}]"
        default_port = port == scheme_port
        given = {name.lower() for name in headers}
        if framing := sorted(given & {"host", "content-length", "transfer-encoding"}):
            raise RequestFailed(f"the {framing[0]} header is the client's own")
        head = [
            f"{method} {target} HTTP/1.1",
            f"Host: {host if default_port else f'{host}:{port}'}",
            *([] if "user-agent" in given else [f"User-Agent: {self._user_agent}"]),
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        if any("\r" in line or "\n" in line for line in head):
            raise RequestFailed("a header holds a line break")
        try:
            message = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        except UnicodeEncodeError:
            raise RequestFailed("the URL or a header is not Latin-1 text") from None
        reading = _Reading()
        try:
            async with asyncio.timeout(total_timeout):
                try:
                    return await self._exchange(
                        origin, message, method, connect_timeout, True, reading
                    )
                except _Reusable:
                    return await self._exchange(
                        origin, message, method, connect_timeout, False, _Reading()
                    )
        except TimeoutError:
            raise RequestFailed(
                f"timeout after {total_timeout:g} s", partial=reading.answer()
            ) from None

    def _origin(self, scheme: str, host: str, port: int) -> _Origin:
        key = (scheme, host, port)
        if key not in self._origins:
            if len(self._origins) >= _ORIGINS_KEPT:
                for unused in [k for k, kept in self._origins.items() if not kept.idle]:
                    del self._origins[unused]
            self._origins[key] = _Origin(scheme, host, port)
        return self._origins[key]

    async def _exchange(
        self,
        origin: _Origin,
        message: bytes,
        method: str,
        connect_timeout: float,
        reuse: bool,
        reading: _Reading,
    ) -> Answer:
        reader, writer, reused = await self._connection(origin, connect_timeout, reuse)
        keep = False
        try:
            writer.write(message)
            try:
                await writer.drain()
                answer, keep = await _read_answer(reader, method, self._read_cap, reading)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                if reused and reading.status is None and not getattr(exc, "partial", b""):
                    raise _Reusable() from exc
                raise RequestFailed(_cut_off(exc, reading), partial=reading.answer()) from exc
            except asyncio.LimitOverrunError as exc:
                raise RequestFailed("invalid HTTP answer: a line over 16 KiB") from exc
            return answer
        finally:
            # An origin let go meanwhile (`_origin`) keeps no connection: none would close it.
            kept = self._origins.get((origin.scheme, origin.host, origin.port)) is origin
            if keep and kept and len(origin.idle) < _IDLE_PER_ORIGIN:
                self._keep_idle(_Idle(origin, reader, writer, time.monotonic()))
            else:
                writer.close()

    def _keep_idle(self, idle: _Idle) -> None:
        idle.origin.idle.append(idle)
        self._idle[idle] = None
        if len(self._idle) > _IDLE_KEPT:
            self._drop(next(iter(self._idle)))
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def _drop(self, idle: _Idle) -> None:
        del self._idle[idle]
        idle.origin.idle.remove(idle)
        idle.writer.close()

    async def _sweep(self) -> None:
        """Close the connections idle past their time, or closed by the other end, whether
        or not their origins are used again; ends when none is left."""
        while self._idle:
            await asyncio.sleep(_SWEEP_SECONDS)
            now = time.monotonic()
            for idle in [i for i in self._idle if not i.fresh(now)]:
                self._drop(idle)

    async def _connection(
        self, origin: _Origin, connect_timeout: float, reuse: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        now = time.monotonic()
        while reuse and origin.idle:
            idle = origin.idle.pop()
            del self._idle[idle]
            if idle.fresh(now):
                return idle.reader, idle.writer, True
            idle.writer.close()
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await self._connect(origin)
        except TimeoutError:
            raise RequestFailed(f"connect timeout after {connect_timeout:g} s") from None
        return reader, writer, False

    async def _connect(self, origin: _Origin) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Resolve once, check every address, and connect to a checked one."""
        addresses = await self._checked_addresses(origin.host, origin.port)
        last: OSError | None = None
        for family, address in addresses:
            try:
                return await asyncio.open_connection(
                    str(address),
                    origin.port,
                    family=family,
                    ssl=self._tls if origin.scheme == "https" else None,
                    server_hostname=origin.host if origin.scheme == "https" else None,
                    limit=_HEAD_LIMIT,
                )
            except ssl.SSLError as exc:
                raise RequestFailed(f"TLS failure: {exc.reason or exc}") from exc
            except OSError as exc:
                last = exc
        if isinstance(last, ConnectionRefusedError):
            raise RequestFailed("connection refused")
        raise RequestFailed(f"connection error: {_describe(last)}")

    async def _checked_addresses(
        self, host: str, port: int
    ) -> list[tuple[socket.AddressFamily, IPAddress]]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:  # a gaierror, or a system error (EMFILE) as it resolved
            raise RequestFailed(f"cannot resolve {host}: {exc.strerror or exc}") from exc
        found: list[tuple[socket.AddressFamily, IPAddress]] = [
            (socket.AddressFamily(family), _address(str(sockaddr[0])))
            for family, _, _, _, sockaddr in infos
        ]
        for _, address in found:
            if is_forbidden(address, self._allowlist):
                raise RequestFailed(f"refused by outbound safety: resolves to {address}")
        return found

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for idle in list(self._idle):
            self._drop(idle)


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%")[0])


def _cut_off(exc: ConnectionError | asyncio.IncompleteReadError, reading: _Reading) -> str:
    """Why an exchange ended early, in words that an attempt log or a bot's user can read:
    an IncompleteReadError says "0 bytes read on a total of undefined expected bytes"."""
    if not isinstance(exc, asyncio.IncompleteReadError):
        return f"connection error: {_describe(exc)}"
    if reading.status is None:
        return "connection closed before an answer"
    return "connection closed before the end of the answer"


def _describe(exc: BaseException | None) -> str:
    return (str(exc) or type(exc).__name__)[:300] if exc is not None else "no address to try"


async def _read_answer(
    reader: asyncio.StreamReader, method: str, cap: int, reading: _Reading
) -> tuple[Answer, bool]:
    """The answer, and whether the connection can carry another request. What has been read
    is in `reading` all along, for a time limit that cuts it."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        version, status = _status(status_line)
        headers: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        if status >= 200 or status == 101:
            break  # a 1xx answer is followed by the real one
    reading.status, reading.headers = status, headers
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Answer(status, headers, b""), keep
    body = reading.body
    if "chunked" in headers.get("transfer-encoding", "").lower():
        complete = await _read_chunked(reader, cap, body)
    elif "content-length" in headers:
        length = _length(headers["content-length"])
        await _read_exactly(reader, min(length, cap), body)
        complete = length <= cap
    else:  # the body ends where the connection does
        while len(body) <= cap and (part := await reader.read(cap + 1 - len(body))):
            body += part
        complete, keep = len(body) <= cap, False
    return Answer(status, headers, bytes(body[:cap]), complete), keep and complete


def _status(line: str) -> tuple[str, int]:
    version, _, rest = line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or not code.isascii() or not code.isdigit():
        raise RequestFailed(f"invalid HTTP answer: {line[:100]!r}")
    return version, int(code)


def _length(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise RequestFailed(f"invalid HTTP answer: Content-Length {text[:40]!r}")
    return int(text)


async def _read_exactly(reader: asyncio.StreamReader, size: int, into: bytearray) -> None:
    """`size` more bytes onto `into`, as they come (IncompleteReadError at the end)."""
    wanted = len(into) + size
    while len(into) < wanted:
        part = await reader.read(wanted - len(into))
        if not part:
            raise asyncio.IncompleteReadError(bytes(into), wanted)
        into += part


async def _read_chunked(reader: asyncio.StreamReader, cap: int, body: bytearray) -> bool:
    """A chunked body up to `cap` bytes, onto `body`; False when the cap cut it short."""
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise RequestFailed(f"invalid HTTP answer: chunk size {size_text[:20]!r}") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return True
        if len(body) + size > cap:
            await _read_exactly(reader, cap - len(body), body)
            return False
        await _read_exactly(reader, size, body)
        await reader.readexactly(2)
