"""Every failed attempt says why in words, its endpoint keeps the last reason, and every
recorded attempt is counted for /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from broker.core import keys, metrics
from broker.core.connection import Redis
from broker.core.settings import Settings
from broker.delivery import attempt_log, endpoint_store, health, records
from broker.delivery.http_client import AttemptResult
from tests.delivery_work import work_queue
from tests.fakes import ScriptedClient
from tests.unit.test_delivery_core import EP, fan_out
from tests.unit.test_delivery_core import r as r  # the fixture: Redis with the endpoint EP

KEY = "c" * 20
REF = f"{KEY}|{EP}"


@pytest.mark.parametrize(
    ("result", "said"),
    [
        (AttemptResult(200, 5), None),
        (AttemptResult(503, 5), "HTTP 503"),
        (
            AttemptResult(500, 5, response="  oops:\n  database\tdown "),
            "HTTP 500: oops: database down",
        ),
        (AttemptResult(404, 5, response="x" * 500), "HTTP 404: " + "x" * 197 + "..."),
        (
            AttemptResult(500, 5, response="\x1b[31mred\x9b2J\u202eevil\x00"),
            "HTTP 500: \\x1b[31mred\\x9b2J\\u202eevil\\x00",
        ),
        (AttemptResult(None, 3000, error="connect timeout after 3 s"), "connect timeout after 3 s"),
        (AttemptResult(302, 5, error="redirect to /x not followed"), "redirect to /x not followed"),
    ],
)
def test_an_attempt_s_error_text(result: AttemptResult, said: str | None) -> None:
    assert attempt_log.error_text(result) == said


@pytest.fixture
def recording(r: Redis) -> Iterator[Redis]:
    metrics.start(r, Settings())
    yield r
    metrics.start(r, Settings(metrics=False))


def test_a_5xx_attempt_records_its_status_and_first_bytes_and_so_does_its_endpoint(
    r: Redis, settings: Settings
) -> None:
    (delivery_id,) = fan_out(r, settings, KEY, ["one"])
    failing = ScriptedClient(AttemptResult(503, 12, response="busy, come back later"))
    work_queue(r, settings, failing, REF)
    (attempt,) = records.view(r, delivery_id)["attempts"]
    assert attempt["error"] == "HTTP 503: busy, come back later"
    assert attempt["statusCode"] == 503 and attempt["response"] == "busy, come back later"
    endpoint = health.view(r, endpoint_store.load(r, EP))
    assert endpoint["lastError"] == "HTTP 503: busy, come back later"


def test_attempts_and_ends_of_deliveries_are_counted(recording: Redis, settings: Settings) -> None:
    r = recording
    fan_out(r, settings, KEY, ["one", "two"])
    client = ScriptedClient(AttemptResult(500, 40), AttemptResult(200, 10), AttemptResult(200, 20))
    work_queue(r, settings, client, REF)  # the first fails, and waits
    head = r.lindex(keys.fifo(KEY, EP), 0)
    assert head is not None
    r.hdel(keys.delivery(KEY, head), "nextAttemptAt")  # its retry is due now
    work_queue(r, settings, client, REF)
    metrics.flush()
    counts = metrics.read(r)
    assert counts.total(metrics.DELIVERY_ATTEMPTS, outcome="failure") == 1
    assert counts.total(metrics.DELIVERY_ATTEMPTS, outcome="success") == 2
    assert counts.total(metrics.DELIVERIES, endpoint_kind="channel", outcome="delivered") == 2
    duration = counts.histograms[metrics.ATTEMPT_DURATION.name][("channel",)]
    assert duration.count == 3 and duration.sum == pytest.approx(0.07)
    assert counts.histograms[metrics.DELIVERY_LATENCY.name][("channel",)].count == 2


def test_an_attempt_the_open_circuit_held_back_is_counted_as_not_sent(
    recording: Redis, settings: Settings
) -> None:
    r = recording
    touchy = replace(settings, circuit_threshold=1, circuit_cooldown=600.0)
    fan_out(r, touchy, KEY, ["one"])
    client = ScriptedClient(AttemptResult(500, 40))
    work_queue(r, touchy, client, REF)  # it fails, and the circuit opens
    head = r.lindex(keys.fifo(KEY, EP), 0)
    assert head is not None
    r.hdel(keys.delivery(KEY, head), "nextAttemptAt")  # its retry is due now
    work_queue(r, touchy, client, REF)
    assert len(client.sent) == 1
    metrics.flush()
    counts = metrics.read(r)
    assert counts.total(metrics.DELIVERY_ATTEMPTS, outcome="failure") == 1
    assert counts.total(metrics.DELIVERY_ATTEMPTS, outcome="not_sent") == 1
    # Only the request that was made took time.
    assert counts.histograms[metrics.ATTEMPT_DURATION.name][("channel",)].count == 1
