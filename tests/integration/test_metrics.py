"""/metrics of real web, worker and scheduler processes after known traffic: every process's
counts add up, and the gauges say what waits and who is alive."""

from __future__ import annotations

import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.stacks import own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import ReceiverFactory, always

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str) -> Samples:
    answer = requests.get(f"{base}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_of_real_processes_count_known_traffic(
    tmp_path_factory: pytest.TempPathFactory, make_receiver: ReceiverFactory
) -> None:
    require_redis()
    with own_stack(tmp_path_factory.mktemp("metrics") / "stack.log") as own:
        env = own.env(SWITCHBOARD_LOG_FORMAT="json", SWITCHBOARD_LOG_LEVEL="INFO")
        for role in ("web", "worker", "scheduler"):
            own.start(role, env)
        own.wait_ready()
        # Before any event, the series of known labels are there at 0 (increase() needs it).
        first = scrape(own.api.base)
        for name, labels in [
            ("switchboard_deliveries_total", {"endpoint_kind": "channel", "outcome": "dead"}),
            ("switchboard_bot_turns_total", {"outcome": "error"}),
        ]:
            assert first[(name, frozenset(labels.items()))] == 0
        good = own.api.echo_channel(make_receiver(always(200)).url)
        bad = own.api.echo_channel(make_receiver(always(500, body=b"no")).url)
        for conversation in ("a", "b", "c"):
            for text in ("one", "two"):
                assert own.api.send(good, conversation, text).status_code == 202
        assert own.api.send(bad, "z", "lost").status_code == 202
        assert own.api.send({**bad, "accessToken": "wrong"}, "z", "x").status_code == 401
        kind = {"endpoint_kind": "channel"}
        expected = {
            ("switchboard_inbound_messages_total", "good queued"): 6,
            ("switchboard_inbound_messages_total", "bad queued"): 1,
            ("switchboard_inbound_messages_total", "unauthorized"): 1,
            ("switchboard_bot_turn_messages_total", ""): 7,
            ("switchboard_deliveries_total", "delivered"): 6,
            ("switchboard_deliveries_total", "dead"): 1,
            ("switchboard_delivery_attempts_total", "success"): 6,
            # The stacks' schedule has four attempts.
            ("switchboard_delivery_attempts_total", "failure"): 4,
            ("switchboard_delivery_latency_seconds_count", ""): 6,
            ("switchboard_delivery_attempt_duration_seconds_count", ""): 10,
            ("switchboard_queue_depth", "dead_letters"): 1,
            ("switchboard_queue_depth", "deliveries"): 0,
            ("switchboard_endpoints", "healthy"): 1,
            ("switchboard_endpoints", "failing"): 1,
            ("switchboard_processes_alive", "worker"): 1,
            ("switchboard_processes_alive", "scheduler"): 1,
        }

        def found() -> dict[tuple[str, str], float]:
            s = scrape(own.api.base)
            inbound = "switchboard_inbound_messages_total"
            return {
                (inbound, "good queued"): value(s, inbound, channel=good["id"], outcome="queued"),
                (inbound, "bad queued"): value(s, inbound, channel=bad["id"], outcome="queued"),
                (inbound, "unauthorized"): value(
                    s, inbound, channel="unknown", outcome="unauthorized"
                ),
                **{
                    (name, label): value(s, name, **labels)
                    for name, label, labels in [
                        ("switchboard_bot_turn_messages_total", "", {}),
                        (
                            "switchboard_deliveries_total",
                            "delivered",
                            {**kind, "outcome": "delivered"},
                        ),
                        ("switchboard_deliveries_total", "dead", {**kind, "outcome": "dead"}),
                        (
                            "switchboard_delivery_attempts_total",
                            "success",
                            {**kind, "outcome": "success"},
                        ),
                        (
                            "switchboard_delivery_attempts_total",
                            "failure",
                            {**kind, "outcome": "failure"},
                        ),
                        ("switchboard_delivery_latency_seconds_count", "", kind),
                        ("switchboard_delivery_attempt_duration_seconds_count", "", kind),
                        ("switchboard_queue_depth", "dead_letters", {"queue": "dead_letters"}),
                        ("switchboard_queue_depth", "deliveries", {"queue": "deliveries"}),
                        ("switchboard_endpoints", "healthy", {"state": "healthy"}),
                        ("switchboard_endpoints", "failing", {"state": "failing"}),
                        ("switchboard_processes_alive", "worker", {"role": "worker"}),
                        ("switchboard_processes_alive", "scheduler", {"role": "scheduler"}),
                    ]
                },
            }

        wait_until(lambda: found() == expected, timeout=30, what=f"the counts {expected}")
        samples = scrape(own.api.base)
        turns = value(samples, "switchboard_bot_turns_total", outcome="ok")
        assert 1 <= turns <= 7
        assert value(samples, "switchboard_bot_turn_duration_seconds_count") == turns

        # One JSON line per event, with its ids, and no secret.
        text = own.log_path.read_text()
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        queued = [line for line in lines if line["event"] == "message queued"]
        assert len(queued) == 7 and all(line["messageId"] and line["sessionId"] for line in queued)
        attempts = [line for line in lines if line["event"].startswith("delivery attempt")]
        assert {line["endpointId"] for line in attempts} == {good["id"], bad["id"]}
        assert all(line["deliveryId"].startswith("msg_") for line in attempts)
        for secret in (good["accessToken"], good["signingSecret"], bad["verifyToken"]):
            assert secret not in text
