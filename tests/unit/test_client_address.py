"""The client of a request behind trusted proxies (`web.client_address`)."""

from __future__ import annotations

import ipaddress

import pytest

from web.client_address import client_of

PROXIES = (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),  # not a proxy: the header is a claim
        ("10.1.0.5", None, "10.1.0.5"),
        ("10.1.0.5", "198.51.100.1", "198.51.100.1"),
        ("10.1.0.5", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the left part is the client's
        ("10.1.0.5", "198.51.100.1, 10.1.0.9", "198.51.100.1"),  # through two proxies
        ("10.1.0.5", "10.1.0.8, 10.1.0.9", "10.1.0.8"),
        ("10.1.0.5", "junk, 198.51.100.1", "198.51.100.1"),
        ("10.1.0.5", "198.51.100.1, junk", "10.1.0.5"),
        ("::1", "2001:db8::1", "2001:db8::1"),
        ("::ffff:10.1.0.5", "::ffff:198.51.100.1", "198.51.100.1"),
        ("unknown", "198.51.100.1", "unknown"),
    ],
)
def test_the_client_is_the_last_address_a_trusted_proxy_served(
    peer: str, forwarded_for: str | None, client: str
) -> None:
    assert client_of(peer, forwarded_for, PROXIES) == client


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_of("10.1.0.5", "198.51.100.1", ()) == "10.1.0.5"
