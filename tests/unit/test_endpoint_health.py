"""Endpoint health in Redis: the circuit breaker, its probes, auto-disable and the switches."""

from __future__ import annotations

import pytest

from broker.core import keys, scripts
from broker.core.connection import Redis
from broker.core.errors import NotFound
from broker.core.settings import Settings
from broker.delivery import endpoint_store, health
from broker.delivery.endpoint import Endpoint
from broker.delivery.records import split_due_member

SETTINGS = Settings(
    circuit_threshold=3,
    circuit_cooldown=10.0,
    circuit_cooldown_max=35.0,
    disable_after=1000.0,
)
EP = "ch_health"
LEASE = 15.0


@pytest.fixture
def r(fake_redis: Redis) -> Redis:
    endpoint_store.save(
        fake_redis, Endpoint(id=EP, kind="channel", bot_id="b", url="http://x/", secret="whsec_")
    )
    return fake_redis


def outcome(r: Redis, now: float, *, ok: bool, error: str = "") -> str:
    """Fold one attempt into the endpoint's health, as a delivery worker does."""
    (state,) = scripts.execute(
        r, lambda pipe: health.add_outcome(pipe, SETTINGS, EP, ok=ok, error=error, now=now)
    )
    return str(state)


def fail(r: Redis, now: float, error: str = "HTTP 500") -> str:
    return outcome(r, now, ok=False, error=error)


def succeed(r: Redis, now: float) -> str:
    return outcome(r, now, ok=True)


def gate(r: Redis, now: float) -> health.Gate:
    return health.gate(r, SETTINGS, EP, now, LEASE)


def test_a_new_endpoint_is_healthy_and_open(r: Redis) -> None:
    assert gate(r, 0) == health.Gate("go")
    view = health.view(r, endpoint_store.load(r, EP))
    assert view["state"] == "healthy" and view["successRate"] is None


def test_failures_below_the_threshold_leave_it_failing_but_open(r: Redis) -> None:
    assert fail(r, 100) == "failing"
    assert fail(r, 101) == "failing"
    assert gate(r, 102) == health.Gate("go")
    assert succeed(r, 103) == "healthy"
    assert fail(r, 104) == "failing"  # the count starts again after a success
    assert fail(r, 105) == "failing"


def test_the_circuit_opens_at_the_threshold_then_one_probe_goes(r: Redis) -> None:
    for now in (100, 101):
        fail(r, now)
    assert fail(r, 102, "connection refused") == "circuit_open"
    assert gate(r, 102.5) == health.Gate("wait", 112.0)
    assert gate(r, 111.9) == health.Gate("wait", 112.0)
    view = health.view(r, endpoint_store.load(r, EP))
    assert view["lastError"] == "connection refused"
    # The cool-down is over: one caller probes, the others poll until it is done.
    assert gate(r, 112.0) == health.Gate("go")
    assert gate(r, 112.1) == health.Gate("probing", 113.1)
    assert gate(r, 126.9) == health.Gate("probing", 127.0)  # never past the probe's lease


def test_a_replay_ends_the_cool_down_so_that_a_probe_goes(r: Redis) -> None:
    for now in (100, 101, 102):
        fail(r, now)
    assert gate(r, 102.5) == health.Gate("wait", 112.0)
    health.probe_soon(r, EP)
    assert gate(r, 102.6) == health.Gate("go")
    assert gate(r, 102.7).verdict == "probing"


def test_a_failed_probe_doubles_the_cooldown_up_to_the_cap(r: Redis) -> None:
    for now in (100, 101, 102):
        fail(r, now)
    assert gate(r, 112) == health.Gate("go")
    assert fail(r, 113) == "circuit_open"
    assert gate(r, 114) == health.Gate("wait", 133.0)  # 20 s
    assert gate(r, 133) == health.Gate("go")
    fail(r, 134)
    assert gate(r, 135) == health.Gate("wait", 169.0)  # 35 s, the cap, not 40
    assert gate(r, 169) == health.Gate("go")
    fail(r, 170)
    assert gate(r, 171) == health.Gate("wait", 205.0)


def test_a_good_probe_closes_the_circuit(r: Redis) -> None:
    for now in (100, 101, 102):
        fail(r, now)
    assert gate(r, 112) == health.Gate("go")
    assert gate(r, 112.5).verdict == "probing"
    assert succeed(r, 113) == "healthy"
    assert gate(r, 113.1) == health.Gate("go")
    assert gate(r, 113.2) == health.Gate("go")
    now_health = health.load_health(r, EP)
    assert now_health.consecutive_failures == 0 and now_health.last_success_at == 113


def test_an_attempt_that_began_before_the_circuit_opened_does_not_extend_it(r: Redis) -> None:
    for now in (100, 101, 102):
        fail(r, now)
    assert fail(r, 103) == "circuit_open"
    assert gate(r, 104) == health.Gate("wait", 112.0)


def test_the_state_shown_after_the_cooldown_is_failing(r: Redis) -> None:
    for now in (100, 101, 102):
        fail(r, now)
    assert health.load_health(r, EP).state_at(105) == "circuit_open"
    assert health.load_health(r, EP).state_at(112) == "failing"


def test_failing_without_success_for_the_configured_time_disables(r: Redis) -> None:
    assert fail(r, 1000) == "failing"
    assert succeed(r, 1500) == "healthy"
    assert fail(r, 1600) == "failing"  # failing since 1600 now, not 1000
    assert fail(r, 2599) == "failing"
    assert gate(r, 2599) == health.Gate("go")
    assert fail(r, 2600) == "disabled"
    assert gate(r, 2601) == health.Gate("disabled")
    assert succeed(r, 2602) == "disabled"  # an attempt under way does not re-enable it
    view = health.view(r, endpoint_store.load(r, EP))
    assert view["state"] == "disabled"
    assert view["disabledReason"] == "no successful attempt for 1000.0 s"


def test_a_success_forgets_the_failures_and_later_ones_count_afresh(r: Redis) -> None:
    assert fail(r, 1000) == "failing"
    assert succeed(r, 1500) == "healthy"
    assert succeed(r, 1550) == "healthy"  # already healthy: nothing more to forget
    assert r.hget(keys.endpoint_health(EP), "failingSince") is None
    assert fail(r, 2100) == "failing"
    assert fail(r, 3050) == "failing"  # 950 s since 2100, though 2050 since 1000
    assert fail(r, 3100) == "disabled"


def test_an_operator_disables_and_enables_and_parked_queues_wake(r: Redis) -> None:
    health.disable(r, EP)
    assert gate(r, 10) == health.Gate("disabled")
    assert health.view(r, endpoint_store.load(r, EP))["disabledReason"] == "disabled by an operator"
    r.sadd(keys.endpoint_parked(EP), f"s1|{EP}", f"s2|{EP}")
    assert health.enable(r, EP) == 2
    assert gate(r, 11) == health.Gate("go")
    handed = sorted(split_due_member(member)[0] for member in r.zrange(keys.DUE, 0, -1))
    assert handed == [f"s1|{EP}", f"s2|{EP}"]
    assert r.scard(keys.endpoint_parked(EP)) == 0
    view = health.view(r, endpoint_store.load(r, EP))
    assert view["state"] == "healthy" and "disabledReason" not in view


def test_enable_after_auto_disable_starts_the_clock_again(r: Redis) -> None:
    fail(r, 0)
    assert fail(r, 1000) == "disabled"
    health.enable(r, EP)
    assert fail(r, 1001) == "failing"
    assert fail(r, 1500) == "failing"


def test_the_success_rate_counts_the_last_hundred_outcomes(r: Redis) -> None:
    for i in range(150):
        outcome(r, i, ok=i % 4 != 0, error="x")
    assert health.view(r, endpoint_store.load(r, EP))["successRate"] == 0.75


def test_an_outcome_after_the_endpoint_went_writes_nothing(r: Redis) -> None:
    endpoint_store.delete(r, EP)
    assert fail(r, 100) == "removed"
    assert not r.exists(keys.endpoint_health(EP)) and not r.exists(keys.endpoint_recent(EP))


def test_a_switch_that_a_removal_overtook_leaves_no_health_behind(
    r: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = endpoint_store.load(r, EP)

    def removed_meanwhile(r: Redis, endpoint_id: str) -> Endpoint:
        endpoint_store.delete(r, endpoint_id)  # between the switch's check and its write
        return loaded

    monkeypatch.setattr(health, "load", removed_meanwhile)
    with pytest.raises(NotFound):
        health.disable(r, EP)
    assert not r.exists(keys.endpoint_health(EP))


def test_views_show_each_endpoint_as_view_does_and_leave_out_one_that_went(r: Redis) -> None:
    fail(r, 100, "HTTP 502")
    assert health.views(r, [EP, "ch_gone", EP]) == [health.view(r, endpoint_store.load(r, EP))] * 2
