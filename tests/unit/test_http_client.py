"""The outbound client against local receivers: safety at connect time, no redirects, limits."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from broker.core.settings import parse_allowlist
from broker.delivery.http_client import DeliveryClient
from tests.receivers import Answer, Receiver, always, closed_url

LOOPBACK = parse_allowlist("127.0.0.0/8")


def _client(allowlist: Any = LOOPBACK) -> DeliveryClient:
    return DeliveryClient(allowlist, user_agent="Switchboard-Webhooks/test", pool_size=4)


def _resolve_name(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[str]) -> list[str]:
    """Make `name` resolve to each of `answers` in turn (the last one sticks); log lookups."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        address = answers[min(len(lookups), len(answers) - 1)]
        lookups.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return lookups


def test_a_plain_post_is_delivered_with_headers(receiver: Receiver) -> None:
    result = _client().post(receiver.url, b'{"a":1}', {"webhook-id": "msg_1"})
    assert result.ok and result.status_code == 200 and result.error is None
    (hit,) = receiver.hits
    assert hit.raw == b'{"a":1}'
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["user-agent"] == "Switchboard-Webhooks/test"
    assert hit.headers["webhook-id"] == "msg_1"


def test_loopback_is_refused_at_connect_time_without_the_allowlist(receiver: Receiver) -> None:
    result = _client(()).post(receiver.url, b"{}", {})
    assert result.status_code is None
    assert result.error is not None and "outbound safety" in result.error
    assert receiver.hits == []


def test_a_name_rebound_to_a_forbidden_address_is_refused_at_connect_time(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    # At configuration the name was public; now it resolves to where the receiver listens.
    lookups = _resolve_name(monkeypatch, "hooks.example.com", ["127.0.0.1"])
    result = _client(()).post(f"http://hooks.example.com:{receiver.port}/hook", b"{}", {})
    assert result.status_code is None and "outbound safety" in (result.error or "")
    assert lookups == ["127.0.0.1"]
    assert receiver.hits == []


def test_the_connection_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    # Resolved once: a second lookup (a rebinding to somewhere else) is never made.
    lookups = _resolve_name(monkeypatch, "hooks.example.com", ["127.0.0.1", "10.0.0.1"])
    result = _client().post(f"http://hooks.example.com:{receiver.port}/hook", b"{}", {})
    assert result.ok, result.error
    assert lookups == ["127.0.0.1"]
    assert receiver.hits[0].headers["host"] == f"hooks.example.com:{receiver.port}"


def test_proxies_from_the_environment_are_not_used(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    proxy = Receiver()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        result = _client(()).post(f"http://10.9.9.9:{receiver.port}/hook", b"{}", {})
        assert result.status_code is None and "outbound safety" in (result.error or "")
        assert proxy.hits == []
    finally:
        proxy.stop()


def test_a_redirect_is_a_failure_and_is_not_followed(receiver: Receiver) -> None:
    target = f"http://127.0.0.1:{receiver.port}/target"
    receiver.behaviour = lambda hit: (
        Answer(int(hit.path.strip("/")), headers={"Location": target})
        if hit.path != "/target"
        else Answer(200)
    )
    client = _client()
    for status in (301, 302, 303, 307, 308):
        result = client.post(f"http://127.0.0.1:{receiver.port}/{status}", b"{}", {})
        assert result.status_code == status and not result.ok
        assert result.error == f"redirect to {target} not followed"
    assert [hit.path for hit in receiver.hits] == ["/301", "/302", "/303", "/307", "/308"]


def test_the_answer_is_kept_up_to_4_kib_and_retry_after_is_read(receiver: Receiver) -> None:
    receiver.behaviour = always(503, headers={"Retry-After": "7"}, body=b"x" * 10_000)
    result = _client().post(receiver.url, b"{}", {})
    assert result.status_code == 503
    assert result.response == "x" * 4096
    assert result.retry_after == "7"


def test_a_hanging_endpoint_times_out(receiver: Receiver) -> None:
    receiver.behaviour = lambda hit: Answer(200, delay=5)
    result = _client().post(receiver.url, b"{}", {}, connect_timeout=1, total_timeout=0.3)
    assert result.status_code is None
    assert result.error == "timeout after 0.3 s"
    assert 250 <= result.duration_ms < 2000


def test_a_closed_port_is_a_connection_error() -> None:
    result = _client().post(closed_url(), b"{}", {})
    assert result.status_code is None and result.error == "connection refused"


def test_connections_are_kept_alive(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    from broker.delivery import http_client, netsafety

    opened: list[str] = []
    real = netsafety.checked_addresses

    def counting(host: str, port: int, allowlist: Any) -> Any:
        opened.append(host)
        return real(host, port, allowlist)

    monkeypatch.setattr(http_client, "checked_addresses", counting)
    client = _client()
    for _ in range(5):
        assert client.post(receiver.url, b"{}", {}).ok
    assert len(receiver.hits) == 5
    assert opened == ["127.0.0.1"]
