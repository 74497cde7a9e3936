"""The outbound HTTP client: keep-alive pools, no redirects, and outbound safety at connect time."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from broker.core import defaults
from broker.core.errors import ForbiddenAddress, UnsafeURL
from broker.core.settings import Network
from broker.delivery.netsafety import checked_addresses

#: An answer body past this is not read: the connection is closed instead.
_MAX_DRAIN_BYTES = 64 * 1024


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP request of a delivery came to."""

    status_code: int | None
    duration_ms: int
    error: str | None = None
    response: str | None = None
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class RefusedAddress(NewConnectionError):
    """Outbound safety refused every address the host resolves to."""

    def __init__(self, conn: HTTPConnection, refusal: UnsafeURL) -> None:
        super().__init__(conn, refusal.message)
        self.refusal = refusal


class ConnectFailed(NewConnectionError):
    """No checked address of the host took the connection."""

    def __init__(self, conn: HTTPConnection, cause: OSError | None) -> None:
        super().__init__(conn, f"Failed to establish a new connection: {cause}")
        self.cause = cause


def _safe_connection_classes(
    allowlist: Sequence[Network],
) -> tuple[type[HTTPConnection], type[HTTPSConnection]]:
    """Connection classes that resolve once, check every address, and connect to a checked one."""

    def new_conn(conn: HTTPConnection) -> socket.socket:
        try:
            addresses = checked_addresses(conn.host, conn.port or 80, allowlist)
        except UnsafeURL as exc:
            raise RefusedAddress(conn, exc) from exc
        last_error: OSError | None = None
        for family, address in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(conn.timeout if isinstance(conn.timeout, (int, float)) else None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect((str(address), conn.port or 80))
                return sock
            except OSError as exc:
                sock.close()
                last_error = exc
        raise ConnectFailed(conn, last_error)

    class SafeHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return new_conn(self)

    class SafeHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return new_conn(self)

    return SafeHTTPConnection, SafeHTTPSConnection


class _SafeAdapter(HTTPAdapter):
    def __init__(self, allowlist: Sequence[Network], pool_size: int) -> None:
        self._allowlist = tuple(allowlist)
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_conn, https_conn = _safe_connection_classes(self._allowlist)

        class SafeHTTPPool(HTTPConnectionPool):
            ConnectionCls = http_conn

        class SafeHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = https_conn

        self.poolmanager.pool_classes_by_scheme = {"http": SafeHTTPPool, "https": SafeHTTPSPool}


def safe_http_session(allowlist: Sequence[Network], pool_size: int) -> requests.Session:
    """A conversation whose every connection goes through outbound safety, and that ignores
    proxies named in the environment."""
    http_session = requests.Session()
    # Proxies, .netrc and CA bundles named by the environment are not ours to follow: a
    # proxy would reach the endpoint on our behalf, past the connect-time checks.
    http_session.trust_env = False
    adapter = _SafeAdapter(allowlist, pool_size)
    http_session.mount("http://", adapter)
    http_session.mount("https://", adapter)
    return http_session


class DeliveryClient:
    """POSTs JSON documents to endpoints; one per worker process, shared by its threads."""

    def __init__(self, allowlist: Sequence[Network], user_agent: str, pool_size: int = 32) -> None:
        self._http_session = safe_http_session(allowlist, pool_size)
        self._user_agent = user_agent

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        connect_timeout: float = defaults.CONNECT_TIMEOUT,
        total_timeout: float = defaults.TOTAL_TIMEOUT,
    ) -> AttemptResult:
        started = time.monotonic()
        deadline = started + total_timeout
        all_headers = {
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            **headers,
        }

        def elapsed_ms() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            response = self._http_session.post(
                url,
                data=body,
                headers=all_headers,
                timeout=(connect_timeout, total_timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.RequestException as exc:
            why = failure_text(exc, connect_timeout=connect_timeout, total_timeout=total_timeout)
            return AttemptResult(None, elapsed_ms(), error=why)
        with response:
            excerpt, complete, read_error = _read_excerpt(response, deadline)
            if not complete:
                # An unread remainder would poison the keep-alive connection.
                response.raw.close()
        error = read_error
        if error is None and 300 <= response.status_code < 400:
            error = f"redirect to {response.headers.get('Location', '?')} not followed"
        return AttemptResult(
            response.status_code,
            elapsed_ms(),
            error=error,
            response=excerpt,
            retry_after=response.headers.get("Retry-After"),
        )


def _read_excerpt(response: requests.Response, deadline: float) -> tuple[str, bool, str | None]:
    """The first bytes of an answer, whether it was read whole, and a read error if any."""
    kept = bytearray()
    total = 0
    try:
        for chunk in response.iter_content(chunk_size=4096):
            total += len(chunk)
            if len(kept) < defaults.RESPONSE_EXCERPT_BYTES:
                kept.extend(chunk[: defaults.RESPONSE_EXCERPT_BYTES - len(kept)])
            if total > _MAX_DRAIN_BYTES or time.monotonic() > deadline:
                return kept.decode("utf-8", "replace"), False, None
    except requests.exceptions.RequestException as exc:
        return kept.decode("utf-8", "replace"), False, f"reading the answer failed: {exc}"
    return kept.decode("utf-8", "replace"), True, None


def failure_text(
    exc: requests.exceptions.RequestException, *, connect_timeout: float, total_timeout: float
) -> str:
    """Why a request got no answer, in words."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connect timeout after {connect_timeout:g} s"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"timeout after {total_timeout:g} s"
    reason = _reason(exc)
    if isinstance(reason, RefusedAddress):
        refusal = reason.refusal
        if isinstance(refusal, ForbiddenAddress):
            return f"refused by outbound safety: resolves to {refusal.address}"
        return refusal.message
    if isinstance(reason, ConnectFailed) and isinstance(reason.cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection error: {str(exc)[:300]}"
    return f"request failed: {str(exc)[:300]}"


def _reason(exc: requests.exceptions.RequestException) -> object:
    """What urllib3 gave as the cause of a failed request (requests wraps it twice)."""
    wrapped = exc.args[0] if exc.args else None
    return getattr(wrapped, "reason", wrapped)
