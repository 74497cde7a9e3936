"""The retry policy of docs/wire-contract.md §5: schedule, jitter, Retry-After, 410 and
exhaustion."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import hypothesis
import pytest
from hypothesis import strategies as st

from broker.core import defaults
from broker.delivery import retry
from broker.delivery.retry import Verdict

SCHEDULE = defaults.RETRY_SCHEDULE


def test_the_default_schedule_is_the_one_of_spec_5() -> None:
    assert SCHEDULE == (0, 5, 30, 120, 600, 1800, 3600, 10800, 21600, 43200)
    # "about 23 h in all"
    assert 22 * 3600 < sum(SCHEDULE) < 23 * 3600


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    decision = retry.decide(status_code=status, attempts_made=1, schedule=SCHEDULE, jitter=0.2)
    assert decision.verdict is Verdict.DELIVERED


@pytest.mark.parametrize("status", [None, 301, 302, 307, 308, 400, 404, 429, 500, 502, 503])
def test_failures_are_retried_on_the_schedule_without_jitter(status: int | None) -> None:
    for made in range(1, len(SCHEDULE)):
        decision = retry.decide(status_code=status, attempts_made=made, schedule=SCHEDULE, jitter=0)
        assert decision == retry.Decision(Verdict.RETRY, SCHEDULE[made])


def test_the_delivery_is_dead_after_the_last_attempt_of_the_schedule() -> None:
    last = retry.decide(status_code=500, attempts_made=len(SCHEDULE), schedule=SCHEDULE, jitter=0)
    assert last.verdict is Verdict.DEAD
    short = retry.decide(status_code=None, attempts_made=3, schedule=(0, 0.3, 0.6), jitter=0.2)
    assert short.verdict is Verdict.DEAD


def test_410_disables_the_endpoint_even_after_the_last_attempt() -> None:
    for made in (1, len(SCHEDULE)):
        decision = retry.decide(status_code=410, attempts_made=made, schedule=SCHEDULE, jitter=0.2)
        assert decision.verdict is Verdict.DISABLE


def test_jitter_stays_within_20_percent_and_spreads() -> None:
    rng = random.Random(7)
    delays = [
        retry.decide(status_code=500, attempts_made=2, schedule=SCHEDULE, jitter=0.2, rng=rng).delay
        for _ in range(2000)
    ]
    assert all(24.0 <= d <= 36.0 for d in delays)
    assert min(delays) < 25.0 and max(delays) > 35.0  # it does move them, both ways
    assert len(set(delays)) > 1900


def test_a_zero_delay_stays_immediate_under_jitter() -> None:
    assert retry.jittered(0, 0.2) == 0
    assert retry.jittered(-1, 0.2) == 0


def test_retry_after_seconds_is_parsed() -> None:
    assert retry.parse_retry_after("120", now=1000.0) == 120.0
    assert retry.parse_retry_after(" 7 ", now=1000.0) == 7.0
    assert retry.parse_retry_after("0", now=1000.0) == 0.0
    # Too many digits to hold is a very long wait (capped where it is used), not no header.
    assert retry.parse_retry_after("1" + "0" * 12, now=1000.0) == 9_999_999_999.0
    assert retry.parse_retry_after("9" * 5000, now=1000.0) == 9_999_999_999.0


def test_retry_after_http_date_is_parsed() -> None:
    now = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2026, 11, 21, 8, 1, 30, tzinfo=UTC), usegmt=True)
    assert later == "Sat, 21 Nov 2026 08:01:30 GMT"
    assert retry.parse_retry_after(later, now) == 90.0
    earlier = format_datetime(datetime(2026, 11, 21, 7, 0, 0, tzinfo=UTC), usegmt=True)
    assert retry.parse_retry_after(earlier, now) == 0.0


@pytest.fixture
def host_far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's local time zone is 9 hours east of UTC."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    assert time.timezone == -9 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("host_far_from_utc")
@pytest.mark.parametrize(
    "value",
    [
        "Sat, 21 Nov 2026 08:01:30 GMT",
        # asctime, and an RFC 5322 date whose "-0000" zone says nothing of where it was
        # written: both parse without a zone, and an HTTP date is GMT all the same.
        "Sat Nov 21 08:01:30 2026",
        "Sat, 21 Nov 2026 08:01:30 -0000",
    ],
)
def test_an_http_date_without_a_zone_is_gmt_not_the_hosts_time(value: str) -> None:
    now = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC).timestamp()
    assert retry.parse_retry_after(value, now) == 90.0


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "soon",
        "-5",
        "1.5e3",
        "Mon, 99 Foo 2026",
        # Digits to str.isdigit() that float() does not take.
        "\u00b2",
        "\u0661\u0662",
        "Fri, 31 Dec 99999 23:59:59 GMT",
    ],
)
def test_retry_after_that_does_not_parse_is_ignored(value: str | None) -> None:
    assert retry.parse_retry_after(value, now=1000.0) is None


@hypothesis.given(st.text(), st.floats(min_value=0, max_value=4e9))
def test_any_retry_after_gives_no_wait_or_a_finite_one(value: str, now: float) -> None:
    """Whatever an endpoint sends, judging the attempt cannot fail on it."""
    seconds = retry.parse_retry_after(value, now)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)
    decision = retry.decide(
        status_code=503, attempts_made=1, schedule=SCHEDULE, jitter=0.2, retry_after=seconds
    )
    assert decision.verdict is Verdict.RETRY and math.isfinite(decision.delay)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_for_429_and_503(status: int) -> None:
    decision = retry.decide(
        status_code=status, attempts_made=1, schedule=SCHEDULE, jitter=0.2, retry_after=90
    )
    assert decision == retry.Decision(Verdict.RETRY, 90)


def test_retry_after_never_shortens_the_schedule() -> None:
    decision = retry.decide(
        status_code=503, attempts_made=2, schedule=SCHEDULE, jitter=0, retry_after=1
    )
    assert decision.delay == 30


def test_retry_after_is_capped() -> None:
    decision = retry.decide(
        status_code=429,
        attempts_made=1,
        schedule=SCHEDULE,
        jitter=0,
        retry_after=10 * 24 * 3600,
        retry_after_cap=3600,
    )
    assert decision.delay == 3600


def test_retry_after_is_ignored_for_other_statuses() -> None:
    decision = retry.decide(
        status_code=500, attempts_made=1, schedule=SCHEDULE, jitter=0, retry_after=900
    )
    assert decision.delay == 5


def test_retry_after_does_not_extend_the_schedule_past_its_end() -> None:
    decision = retry.decide(
        status_code=429, attempts_made=len(SCHEDULE), schedule=SCHEDULE, jitter=0, retry_after=5
    )
    assert decision.verdict is Verdict.DEAD


def test_the_last_attempt_of_a_schedule_is_known() -> None:
    schedule = [0.0, 5.0, 30.0]
    assert [retry.is_last(made, schedule) for made in range(4)] == [False, False, True, True]
