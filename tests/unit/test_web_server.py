"""Which requests the web process answers on its event loop: the message routes and liveness,
the bulk of the traffic and a round trip or two each; everything else goes to its threads."""

from __future__ import annotations

import resource

import pytest

from broker.core.settings import Settings
from switchboard.connection_cap import RESERVED_FDS, connection_cap, raise_fd_limit
from switchboard.web_server import answered_inline, inline_routes


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", b"/v1/channels/webhook/ch_1/messages"),
        ("POST", b"/v1/channels/webhook/ch_1/messages?x=1"),
        ("POST", b"/api/webhookMessage/bot_1"),
        ("GET", b"/healthz"),
    ],
)
def test_the_message_routes_and_liveness_are_answered_on_the_loop(
    method: str, target: bytes
) -> None:
    assert answered_inline(method, target)


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", b"/v1/channels/webhook/ch_1/messages"),
        ("PUT", b"/v1/bots/bot_1/offloading"),
        ("GET", b"/readyz"),
        ("GET", b"/dashboard"),
        ("POST", b"/v1/bots"),
        ("GET", b"/healthz?verbose=1"),
    ],
)
def test_every_other_route_takes_a_thread(method: str, target: bytes) -> None:
    assert not answered_inline(method, target)


def test_messages_that_wait_for_replicas_take_a_thread() -> None:
    """WAIT may hold a message for SWITCHBOARD_INGRESS_REPLICA_WAIT: never on the loop."""
    assert inline_routes(Settings()) is answered_inline
    waiting = inline_routes(Settings(ingress_replicas=1))
    assert not waiting("POST", b"/v1/channels/webhook/ch_1/messages")
    assert not waiting("POST", b"/api/webhookMessage/bot_1")
    assert waiting("GET", b"/healthz")


def test_a_web_process_takes_every_file_descriptor_it_may() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit of open files to raise to")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        assert raise_fd_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_client_connections_leave_descriptors_for_redis_and_files() -> None:
    assert connection_cap(1024, 8) == 1024 - RESERVED_FDS - 16
    assert connection_cap(100, 8) == 50  # half at least, however few
