"""/metrics after known traffic through the app in-process, and /readyz from the heartbeat
index."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from prometheus_client.openmetrics import parser as openmetrics
from prometheus_client.parser import text_string_to_metric_families

from broker.core import heartbeats, keys, metrics
from broker.core.connection import Redis, index_shards
from broker.delivery.records import split_due_member, split_ref
from tests.delivery_work import due_members
from tests.receivers import Answer, Hit, Receiver, ReceiverFactory
from tests.web_app import ADMIN, WebApp, api_error, web_app
from web.services import Services

pytestmark = pytest.mark.usefixtures("served_by")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(web: WebApp, **headers: str) -> Samples:
    answer = web.client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.get_data(as_text=True))
        for sample in family.samples
    }


def test_metrics_count_known_traffic(web: WebApp, make_receiver: ReceiverFactory) -> None:
    def first_fails(hit: Hit) -> Answer:
        return Answer(502, body=b"bad gateway") if hit.try_number == 1 else Answer(200)

    receiver: Receiver = make_receiver(first_fails)
    channel = web.channel(webhookUrl=receiver.url)
    for conversation in ("a", "b", "c"):
        web.say(channel, conversation, "hello")
    again = {"conversationId": "a", "message": {"textMessage": {"text": "again"}}}
    for _ in range(2):
        answer = web.post_message(channel, again, {"Idempotency-Key": "k1"})
        assert answer.status_code == 202
    assert web.post_message({**channel, "accessToken": "wrong"}, {}).status_code == 401
    assert web.post_message(channel, {"conversationId": "a"}).status_code == 422
    assert web.post_message({"id": "ch_nope", "accessToken": "x"}, {}).status_code == 404
    web.deliver_due()  # the first attempt of each fails; they wait 5 s for their retry
    for member in due_members(web.redis):
        web.redis.zadd(keys.due(member, index_shards(web.redis)), {member: 0})
    samples = scrape(web)
    channel_id = channel["id"]

    def inbound(outcome: str, channel: str = channel_id) -> float:
        labels = (("channel", channel), ("outcome", outcome))
        return samples.get(("switchboard_inbound_messages_total", labels), 0)

    assert inbound("queued") == 4
    assert inbound("duplicate") == 1
    assert inbound("invalid") == 1
    assert inbound("unauthorized", "unknown") == 1
    assert inbound("unknown_channel", "unknown") == 1
    attempts = ("switchboard_delivery_attempts_total", (("endpoint_kind", "channel"),))
    assert samples[(attempts[0], (*attempts[1], ("outcome", "failure")))] == 3
    depth = dict(
        (labels[0][1], value)
        for (name, labels), value in samples.items()
        if name == "switchboard_queue_depth"
    )
    assert depth["deliveries"] == 3 and depth["retries"] == 3
    assert depth["inbound"] == 1 and depth["bot_turns"] == 1  # the "again" waits for its turn

    for member in due_members(web.redis):
        conversation_key, endpoint_id = split_ref(split_due_member(member)[0])
        head = web.redis.lindex(keys.fifo(conversation_key, endpoint_id), 0)
        assert head is not None
        web.redis.hdel(keys.delivery(conversation_key, head), "nextAttemptAt")
    web.deliver_due()
    samples = scrape(web)
    assert samples[(attempts[0], (*attempts[1], ("outcome", "success")))] == 3
    delivered = (("endpoint_kind", "channel"), ("outcome", "delivered"))
    assert samples[("switchboard_deliveries_total", delivered)] == 3
    latency = ("switchboard_delivery_latency_seconds_count", (("endpoint_kind", "channel"),))
    assert samples[latency] == 3
    assert samples[("switchboard_endpoints", (("state", "healthy"),))] == 1
    assert samples[("switchboard_redis_memory_bytes", (("kind", "used"),))] > 0
    assert ("switchboard_redis_memory_bytes", (("kind", "max"),)) in samples


def test_the_first_scrape_has_the_series_of_known_labels_at_0(web: WebApp) -> None:
    """Prometheus's `increase()` counts from a series' first sample: a series that appeared
    with the first dead letter after a deploy would never count that one."""
    samples = scrape(web)
    for kind in ("channel", "offloading"):
        for outcome in ("delivered", "dead"):
            labels = (("endpoint_kind", kind), ("outcome", outcome))
            assert samples[("switchboard_deliveries_total", labels)] == 0
        for outcome in ("success", "failure", "not_sent"):
            labels = (("endpoint_kind", kind), ("outcome", outcome))
            assert samples[("switchboard_delivery_attempts_total", labels)] == 0
        for histogram in ("delivery_attempt_duration", "delivery_latency"):
            count = f"switchboard_{histogram}_seconds_count"
            assert samples[(count, (("endpoint_kind", kind),))] == 0
    for outcome in ("ok", "error", "put_off"):
        assert samples[("switchboard_bot_turns_total", (("outcome", outcome),))] == 0
    assert samples[("switchboard_bot_turn_messages_total", ())] == 0
    assert samples[("switchboard_bot_turn_duration_seconds_count", ())] == 0
    assert not any(name.startswith("switchboard_inbound") for name, _ in samples)  # channels


def inbound_series(samples: Samples) -> dict[tuple[str, str], float]:
    """The inbound messages' samples by (channel, outcome)."""
    return {
        (dict(labels)["channel"], dict(labels)["outcome"]): value
        for (name, labels), value in samples.items()
        if name == "switchboard_inbound_messages_total"
    }


@pytest.mark.parametrize("per_channel", [True, False])
def test_inbound_series_are_per_channel_unless_turned_off(per_channel: bool) -> None:
    with web_app(metrics_per_channel=per_channel) as web:
        channels = [web.channel() for _ in range(3)]
        for channel in channels:
            web.say(channel, "a", "hi")
        assert web.post_message({"id": "ch_nope", "accessToken": "x"}, {}).status_code == 404
        counted = {labels: n for labels, n in inbound_series(scrape(web)).items() if n}
    if per_channel:
        queued = {(channel["id"], "queued"): 1.0 for channel in channels}
        assert counted == {**queued, ("unknown", "unknown_channel"): 1.0}
    else:
        assert counted == {("all", "queued"): 3.0, ("unknown", "unknown_channel"): 1.0}


def test_without_per_channel_series_the_inbound_ones_are_known_from_the_first_scrape() -> None:
    with web_app(metrics_per_channel=False) as web:
        found = inbound_series(scrape(web))
    assert found == {
        (channel, outcome): 0.0
        for channel in ("all", "unknown")
        for outcome in metrics.INBOUND_OUTCOMES
    }


def test_turning_per_channel_series_off_drops_those_counted_before() -> None:
    with web_app(metrics_per_channel=False) as web:
        channel = web.channel()
        before = metrics._field(metrics.INBOUND_MESSAGES, (channel["id"], "queued"), "")
        web.redis.hincrby(keys.METRICS, before, 5)  # counted while it was on
        web.say(channel, "a", "hi")
        found = inbound_series(scrape(web))
        assert not web.redis.hexists(keys.METRICS, before)
    assert found[("all", "queued")] == 1
    assert not any(channel_id == channel["id"] for channel_id, _ in found)


def test_an_openmetrics_scraper_is_answered_in_openmetrics(web: WebApp) -> None:
    channel = web.channel()
    web.say(channel, "a", "hello")
    answer = web.client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert answer.status_code == 200
    assert answer.content_type.startswith("application/openmetrics-text; version=1.0.0")
    text = answer.get_data(as_text=True)
    assert text.endswith("# EOF\n")
    families = openmetrics.text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }
    inbound = (("channel", channel["id"]), ("outcome", "queued"))
    assert found[("switchboard_inbound_messages_total", inbound)] == 1
    assert found[("switchboard_queue_depth", (("queue", "deliveries"),))] == 1
    for accept in (
        "",
        "text/plain; version=0.0.4",
        "*/*",
        "application/openmetrics-text; version=1.x",
    ):
        classic = scrape(web, Accept=accept)  # the text format, unless OpenMetrics is asked
        assert classic.keys() == found.keys()


def test_the_metrics_token_guards_metrics_when_it_is_set() -> None:
    with web_app(metrics_token="scrape-me") as web:
        api_error(web.client.get("/metrics"), 401, "unauthorized")
        wrong = {"Authorization": "Bearer nope"}
        api_error(web.client.get("/metrics", headers=wrong), 401, "unauthorized")
        assert scrape(web, Authorization="Bearer scrape-me")


def test_guessing_the_metrics_token_is_throttled() -> None:
    with web_app(metrics_token="scrape-me", auth_failures=3) as web:
        wrong = {"Authorization": "Bearer nope"}
        codes = [web.client.get("/metrics", headers=wrong).status_code for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        refused = web.client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        api_error(refused, 429, "rate_limited")  # the right token waits too: no oracle
        assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_metrics_off_still_gives_the_gauges() -> None:
    with web_app(metrics=False) as web:
        channel = web.channel()
        web.say(channel, "a", "hi")
        samples = scrape(web)
        assert not any(name == "switchboard_inbound_messages_total" for name, _ in samples)
        assert not any(name == "switchboard_deliveries_total" for name, _ in samples)
        assert samples[("switchboard_queue_depth", (("queue", "deliveries"),))] == 1


@pytest.fixture
def beating(web: WebApp) -> Iterator[WebApp]:
    yield web
    for role in heartbeats.ROLES:
        web.redis.delete(keys.heartbeats(role))


def test_readiness_says_what_is_missing_from_the_heartbeat_index(beating: WebApp) -> None:
    web = beating
    answer = web.client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["checks"] == {
        "redis": "ok",
        "workers": 0,
        "schedulers": 0,
        "reason": "no worker has a fresh heartbeat; no scheduler has a fresh heartbeat",
    }
    assert answer.get_json()["error"] == {
        "code": "unavailable",
        "message": "no worker has a fresh heartbeat; no scheduler has a fresh heartbeat",
    }
    heartbeats.beat(web.redis, "worker", "w:1")
    assert web.client.get("/readyz").get_json()["checks"]["reason"] == (
        "no scheduler has a fresh heartbeat"
    )
    heartbeats.beat(web.redis, "scheduler", "s:1")
    answer = web.client.get("/readyz")
    assert answer.status_code == 200
    assert answer.get_json() == {
        "status": "ready",
        "checks": {"redis": "ok", "workers": 1, "schedulers": 1},
    }
    assert web.client.get("/healthz").status_code == 200


def test_readiness_says_redis_is_unreachable_without_its_error_text() -> None:
    with web_app() as web:
        nowhere: Redis = redis.Redis(port=1, socket_connect_timeout=0.2, decode_responses=True)
        web.app.extensions["switchboard"] = Services(web.settings, nowhere, web.sender)
        answer = web.client.get("/readyz")
        assert answer.status_code == 503
        assert answer.get_json()["checks"] == {
            "redis": "unreachable",
            "reason": "Redis does not answer",
        }


def test_a_removed_channel_s_series_do_not_come_back(web: WebApp, receiver: Receiver) -> None:
    """A process that counted a channel's message just before its removal adds the series
    again at its next flush: the scrape drops it."""
    channel = web.channel(webhookUrl=receiver.url)
    web.say(channel, "u1", "hello")
    removed = web.client.delete(
        f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}", headers=ADMIN
    )
    assert removed.status_code == 204
    late = metrics._field(metrics.INBOUND_MESSAGES, (channel["id"], "queued"), "")
    web.redis.hincrby(keys.METRICS, late, 1)  # a late flush of another process
    inbound = {labels for name, labels in scrape(web) if name.startswith("switchboard_inbound")}
    assert not any(("channel", channel["id"]) in labels for labels in inbound)
    assert not web.redis.hexists(keys.METRICS, late)
