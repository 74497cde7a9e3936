"""`switchboard status`, `endpoints` and `deliveries show` on the real Redis, in-process."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from broker.core import heartbeats, keys
from tests.app_redis import app_broker_url, app_url
from tests.command_line import run_cli
from tests.receivers import ReceiverFactory, always
from tests.web_app import WebApp


@pytest.fixture
def cli(web: WebApp, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebApp]:
    monkeypatch.setenv("REDIS_URL", app_url())
    monkeypatch.setenv("SWITCHBOARD_BROKER_URL", app_broker_url())
    yield web
    for role in heartbeats.ROLES:
        web.redis.delete(keys.heartbeats(role))


def failed_delivery(web: WebApp, make_receiver: ReceiverFactory) -> tuple[str, str]:
    """A channel whose endpoint answered 500 to its only delivery: (endpoint, delivery)."""
    channel = web.channel(webhookUrl=make_receiver(always(500, body=b"kaput")).url)
    web.say(channel, "u1", "hi")
    web.deliver_due()
    (delivery_id,) = web.redis.zrange(keys.DELIVERIES, 0, -1)
    return channel["id"], delivery_id


def test_status_shows_queues_processes_and_troubled_endpoints(
    cli: WebApp, make_receiver: ReceiverFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint_id, _ = failed_delivery(cli, make_receiver)
    heartbeats.beat(cli.redis, "worker", "box:11")
    code, out, _ = run_cli(capsys, "status")
    assert code == 1, out  # no scheduler: not ready, as /readyz would say
    lines = out.splitlines()
    assert "deliveries  depth=1  oldest=-" in lines  # its head waits for a retry
    assert "retries  depth=1  oldest=-" in lines
    assert any(line.startswith("worker  box:11  beat=") for line in lines)
    assert "1 worker(s), 0 scheduler(s) alive  (NOT READY)" in lines
    (row,) = [line for line in lines if line.startswith(endpoint_id)]
    assert row == f"{endpoint_id}  channel  state=failing  success=0%  error=HTTP 500: kaput"
    assert "endpoints: 0 healthy, 1 failing, 0 circuit open, 0 disabled" in out
    (memory,) = [line for line in lines if line.startswith("Redis memory: ")]
    assert memory.endswith("B (no maxmemory set)") or memory.endswith("%)")

    heartbeats.beat(cli.redis, "scheduler", "box:12")
    code, out, _ = run_cli(capsys, "status", "--json")
    assert code == 0
    found = json.loads(out)
    assert found["queues"]["deliveries"] == 1
    assert [w["name"] for w in found["workers"]] == ["box:11"]
    assert found["endpoints"]["failing"] == 1
    assert found["redisMemory"]["usedBytes"] > 0
    assert found["troubledEndpoints"][0]["lastError"] == "HTTP 500: kaput"


def test_endpoints_are_listed_disabled_and_enabled(
    cli: WebApp, make_receiver: ReceiverFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint_id, _ = failed_delivery(cli, make_receiver)
    code, out, _ = run_cli(capsys, "endpoints", "disable", endpoint_id)
    assert code == 0 and out.splitlines()[-1] == "state: disabled"
    code, out, _ = run_cli(capsys, "endpoints", "list", "--state", "disabled")
    assert code == 0 and out.startswith(f"{endpoint_id}  channel  state=disabled")
    assert "error=disabled by an operator" in out and out.endswith("1 endpoint(s)\n")
    code, out, _ = run_cli(capsys, "endpoints", "list", "--json")
    assert [e["state"] for e in json.loads(out)] == ["disabled"]
    code, out, _ = run_cli(capsys, "endpoints", "enable", endpoint_id)
    assert code == 0 and out.splitlines() == [
        f"{endpoint_id} enabled; 0 queue(s) resumed",
        "state: healthy",
    ]
    code, _, err = run_cli(capsys, "endpoints", "enable", "ep_none")
    assert code == 2 and "no endpoint 'ep_none'" in err


def test_enabling_and_disabling_each_log_their_event_beside_the_output(
    cli: WebApp,
    make_receiver: ReceiverFactory,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Both are events of the log (README, Logs), which goes to standard error: one line
    each, never in the output."""
    endpoint_id, _ = failed_delivery(cli, make_receiver)
    caplog.set_level(logging.INFO, logger="broker.delivery.health")
    for command, event in [("disable", "endpoint disabled"), ("enable", "endpoint enabled")]:
        caplog.clear()
        code, out, _ = run_cli(capsys, "endpoints", command, endpoint_id)
        assert code == 0 and out.startswith(f"{endpoint_id} {command}d;") and "{" not in out
        logged = [r for r in caplog.records if r.name == "broker.delivery.health"]
        assert [record.getMessage() for record in logged] == [event]


def test_a_delivery_is_shown_with_its_attempts(
    cli: WebApp, make_receiver: ReceiverFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    _, delivery_id = failed_delivery(cli, make_receiver)
    code, out, _ = run_cli(capsys, "deliveries", "show", delivery_id)
    assert code == 0
    assert f"id:           {delivery_id}" in out and "status:       queued" in out
    (attempt,) = [line for line in out.splitlines() if line.startswith("1  ")]
    assert "status=500" in attempt and "error=HTTP 500: kaput" in attempt
    assert attempt.endswith("answer=kaput")
    code, out, _ = run_cli(capsys, "deliveries", "show", delivery_id, "--json")
    assert json.loads(out)["attempts"][0]["statusCode"] == 500
    code, _, err = run_cli(capsys, "deliveries", "show", "msg_nope")
    assert code == 2 and "no delivery 'msg_nope'" in err


def test_a_delivery_shows_its_values_escaped(
    cli: WebApp, make_receiver: ReceiverFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    channel = cli.channel(webhookUrl=make_receiver(always(500)).url)
    forged = "u1\x1b[2J\r\nstatus:       delivered\u202e\x9b"
    cli.say(channel, forged, "hi\u2028there\u200f")
    cli.deliver_due()
    (delivery_id,) = cli.redis.zrange(keys.DELIVERIES, 0, -1)
    code, out, _ = run_cli(capsys, "deliveries", "show", delivery_id)
    assert code == 0
    shown = "u1\\x1b[2J\\r\\nstatus:       delivered\\u202e\\x9b"
    assert f"sessionId:    {shown}" in out.splitlines()
    (body,) = [line for line in out.splitlines() if line.startswith("body:")]
    assert "\\u2028" in body and "\\u200f" in body and "\\x9b" in body
    assert not any(c in out for c in "\x1b\r\u202e\u200f\u2028\x9b")


def test_a_broker_that_refuses_tasks_is_shown_for_a_minute(
    cli: WebApp, capsys: pytest.CaptureFixture[str]
) -> None:
    from kombu.exceptions import OperationalError

    from workers.celery_app import CelerySender

    class RefusingApp:
        def send_task(self, *args: object, **kwargs: object) -> None:
            raise OperationalError("[Errno 111] Connection refused")

    CelerySender(RefusingApp(), cli.redis).deliver(["c|e"])
    assert 0 < cli.redis.ttl(keys.BROKER_TROUBLE) <= 60
    _, out, _ = run_cli(capsys, "status")
    assert "Celery's broker refused a task at " in out
    assert "([Errno 111] Connection refused): retries wait for it" in out
    _, out, _ = run_cli(capsys, "status", "--json")
    assert json.loads(out)["brokerTrouble"]["error"] == "[Errno 111] Connection refused"
    cli.redis.delete(keys.BROKER_TROUBLE)
