"""The address of a request's client, for the throttling of failed authentications: the
peer's, or, when the peer is a proxy the operator trusts (`SWITCHBOARD_TRUSTED_PROXIES`),
the address that proxy says it served (`X-Forwarded-For`). Behind a load balancer that is
not trusted, every client has the balancer's address, and one client's bad tokens would
lock them all out."""

from __future__ import annotations

import ipaddress

from broker.core.settings import Network

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_of(peer: str, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """Walking `X-Forwarded-For` from the right (each proxy adds the address it served at
    the end), the first address that is not a trusted proxy's; `peer` when it is not a
    trusted proxy itself. An entry that is not an address ends the walk at the last one
    that was: the header's left part is whatever the client wrote."""
    if not trusted or not _trusted(_address(peer), trusted):
        return peer
    client = peer
    for part in reversed((forwarded_for or "").split(",")):
        address = _address(part.strip())
        if address is None:
            break
        client = str(address)
        if not _trusted(address, trusted):
            break
    return client


def _address(text: str) -> _Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: _Address | None, trusted: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in trusted)
