"""Outbound safety: refuse endpoint addresses inside our own network.

A URL is checked when it is configured, and every address is checked again at
connect time, so that a name that later resolves somewhere else (DNS rebinding)
does not get through.
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from collections.abc import Sequence
from urllib.parse import urlsplit

from broker.core.errors import ForbiddenAddress, UnsafeURL
from broker.core.settings import Network

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The well-known NAT64 prefix: its last 32 bits are the IPv4 address reached.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

#: Networks that are not globally reachable, from IANA's special-purpose address registries,
#: refused whatever the running Python's own tables say: they lag behind (site-local
#: fec0::/10, the 6to4 relay anycast and the newer documentation prefix pass as global on
#: some versions).
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/127",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)


def is_forbidden(address: IPAddress, allowlist: Sequence[Network]) -> bool:
    """True for loopback, private, link-local, multicast, reserved or other non-global addresses."""
    if any(address in network for network in allowlist):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and is_forbidden(embedded, allowlist):
            return True
        if address.ipv4_mapped is not None:
            return False
    return (
        any(address in network for network in _NOT_GLOBAL)
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to (mapped, 6to4, Teredo or NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve(host: str, port: int) -> list[tuple[socket.AddressFamily, IPAddress]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeURL(f"cannot resolve {host!r}: {exc.strerror}", field="url") from exc
    except UnicodeError:  # an empty label (a..b), one over 63 characters
        raise UnsafeURL(f"{host!r} is not a valid host name", field="url") from None
    found: list[tuple[socket.AddressFamily, IPAddress]] = []
    for family, _, _, _, sockaddr in infos:
        found.append((family, ipaddress.ip_address(str(sockaddr[0]).split("%")[0])))
    return found


def checked_addresses(
    host: str, port: int, allowlist: Sequence[Network]
) -> list[tuple[socket.AddressFamily, IPAddress]]:
    """Resolve `host` once; every address must be allowed, else UnsafeURL."""
    addresses = resolve(host, port)
    for _, address in addresses:
        if is_forbidden(address, allowlist):
            raise ForbiddenAddress(
                f"{host} resolves to {address}, which outbound safety refuses "
                "(add it to SWITCHBOARD_OUTBOUND_ALLOWLIST to allow it)",
                address=str(address),
                field="url",
            )
    return addresses


def check_url(url: str, allowlist: Sequence[Network], *, field: str = "url") -> str:
    """Validate an endpoint URL at configuration time; returns it unchanged."""
    for position, character in enumerate(url):
        if character.isspace() or unicodedata.category(character) == "Cc":
            raise UnsafeURL(
                f"the URL holds a space or control character ({character!r}) at position "
                f"{position}: percent-encode it",
                field=field,
            )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL: {exc}", field=field) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("an endpoint URL must be http:// or https:// with a host", field=field)
    if parts.username or parts.password:
        raise UnsafeURL("an endpoint URL must not carry credentials", field=field)
    if port == 0:
        raise UnsafeURL("an endpoint URL's port must be 1 to 65535, not 0", field=field)
    try:
        checked_addresses(
            parts.hostname, port or (443 if parts.scheme == "https" else 80), allowlist
        )
    except ForbiddenAddress as exc:
        raise ForbiddenAddress(exc.message, address=exc.address, field=field) from exc
    except UnsafeURL as exc:
        raise UnsafeURL(exc.message, field=field) from exc
    return url
