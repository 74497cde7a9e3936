"""Outbound safety (docs/wire-contract.md §5): which addresses an endpoint URL may lead to."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from broker.core.errors import UnsafeURL
from broker.core.settings import parse_allowlist
from broker.delivery.netsafety import check_url, checked_addresses, is_forbidden

FORBIDDEN = [
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "192.168.1.1",
    "127.0.0.1",
    "127.1.2.3",
    "169.254.169.254",
    "0.0.0.0",
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "::ffff:10.0.0.1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2002:a00:1::1",  # 6to4 around 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    "2001:db8::1",
    # Not global, though some Python versions' tables say they are.
    "fec0::1",  # site-local, deprecated
    "feff:ffff::1",
    "192.88.99.1",  # the 6to4 relay anycast, deprecated
    "3fff::1",  # documentation (RFC 9637)
    "5f00::1",  # SRv6 SIDs
]
ALLOWED = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_internal_addresses_are_forbidden(address: str) -> None:
    assert is_forbidden(ipaddress.ip_address(address), ())


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden(ipaddress.ip_address(address), ())


def test_the_allowlist_is_the_only_way_through() -> None:
    allow = parse_allowlist("10.0.0.0/8,::1/128")
    assert not is_forbidden(ipaddress.ip_address("10.1.2.3"), allow)
    assert not is_forbidden(ipaddress.ip_address("::1"), allow)
    assert not is_forbidden(ipaddress.ip_address("::ffff:10.0.0.1"), allow)
    assert is_forbidden(ipaddress.ip_address("169.254.169.254"), allow)
    assert is_forbidden(ipaddress.ip_address("127.0.0.1"), allow)


def _resolving_to(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        found = []
        for text in table[host]:
            family = socket.AF_INET6 if ":" in text else socket.AF_INET
            sockaddr = (text, port, 0, 0) if family == socket.AF_INET6 else (text, port)
            found.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return found

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0:80/",
        "http://127.0.0.1:9/",
    ],
)
def test_literal_internal_urls_are_refused_at_configuration(url: str) -> None:
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, (), field="webhookUrl")
    assert caught.value.field == "webhookUrl"
    assert caught.value.status == 422
    assert "SWITCHBOARD_OUTBOUND_ALLOWLIST" in caught.value.message


@pytest.mark.parametrize(
    "addresses",
    [["10.1.1.1"], ["169.254.169.254"], ["::1"], ["93.184.215.14", "10.0.0.1"]],
)
def test_a_name_that_resolves_inside_is_refused(
    monkeypatch: pytest.MonkeyPatch, addresses: list[str]
) -> None:
    _resolving_to(monkeypatch, {"hooks.example.com": addresses})
    with pytest.raises(UnsafeURL) as caught:
        check_url("https://hooks.example.com/in", (), field="apiUrl")
    assert caught.value.field == "apiUrl"


def test_a_name_that_resolves_outside_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving_to(monkeypatch, {"hooks.example.com": ["93.184.215.14", "2606:4700::1"]})
    url = "https://hooks.example.com/in"
    assert check_url(url, ()) == url
    found = checked_addresses("hooks.example.com", 443, ())
    assert [str(address) for _, address in found] == ["93.184.215.14", "2606:4700::1"]


def test_an_allow_listed_name_inside_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving_to(monkeypatch, {"receiver.internal": ["10.20.30.40"]})
    assert check_url("http://receiver.internal/x", parse_allowlist("10.20.0.0/16"))


def test_a_name_that_does_not_resolve_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving_to(monkeypatch, {})
    with pytest.raises(UnsafeURL, match="cannot resolve"):
        check_url("http://nowhere.invalid/", ())


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://",
        "example.com/x",
        "http://u:p@8.8.8.8/",
        "http://8.8.8.8/sp ace",
        "http://8.8.8.8/cr\r\nX-Injected: 1",
        "http://8.8.8.8/tab\tx",
        " http://8.8.8.8/",
        "http://8.8.8.8/\x7f",
        "http://8.8.8.8:0/",
        "http://8.8.8.8:99999/",
        "http://a..b/",
        "http://.example/",
        "http://" + "a" * 64 + ".example/",
    ],
)
def test_urls_that_are_not_plain_http_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url(url, ())
