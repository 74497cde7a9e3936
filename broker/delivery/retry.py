"""Retry policy: what to do after an attempt. Pure functions, no I/O."""

from __future__ import annotations

import enum
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from broker.core.defaults import RETRY_AFTER_CAP

#: RFC 9110's delta-seconds: ASCII digits only (str.isdigit also takes superscripts and
#: other scripts' digits).
_DELTA_SECONDS = re.compile(r"[0-9]+")
#: Digits past these are more than any cap; a longer value is taken as this many 9s
#: (RFC 9111 §1.2.2: a delta-seconds too large is the greatest one can hold).
_DELTA_DIGITS = 10


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"
    #: The endpoint said it is gone (410): disable it and hold its deliveries.
    DISABLE = "disable"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    #: Seconds until the next attempt, for RETRY.
    delay: float = 0.0


def jittered(delay: float, jitter: float, rng: random.Random | None = None) -> float:
    """`delay` moved at random by up to `jitter` (a fraction) either way."""
    if delay <= 0 or jitter <= 0:
        return max(delay, 0.0)
    spread = (rng or random).uniform(-jitter, jitter)
    return delay * (1 + spread)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date.

    Whatever the endpoint sends, the answer is None (no usable header) or a finite number of
    0 or more: an endpoint's header never stops an attempt from being judged.
    """
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value) if len(value) <= _DELTA_DIGITS else float("9" * _DELTA_DIGITS)
    try:
        seconds = _http_date(value).timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _http_date(value: str) -> datetime:
    """An HTTP date, which is always GMT (RFC 9110 §5.6.7): the asctime form and a "-0000"
    zone, which name no zone, parse to a naive time, and are GMT too, not the host's."""
    moment = parsedate_to_datetime(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_last(attempts_made: int, schedule: Sequence[float]) -> bool:
    """Whether the next attempt, after `attempts_made`, is the schedule's last."""
    return attempts_made + 1 >= len(schedule)


def decide(
    *,
    status_code: int | None,
    attempts_made: int,
    schedule: Sequence[float],
    jitter: float,
    retry_after: float | None = None,
    retry_after_cap: float = RETRY_AFTER_CAP,
    now: float = 0.0,
    deadline: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """Judge one attempt.

    `status_code` is None for a timeout or a connection error. `attempts_made`
    counts this attempt. `schedule[i]` is the delay before attempt i+1. A delivery
    with a `deadline` that the next attempt would come after is dead now.
    """
    if status_code is not None and 200 <= status_code < 300:
        return Decision(Verdict.DELIVERED)
    if status_code == 410:
        return Decision(Verdict.DISABLE)
    if attempts_made >= len(schedule):
        return Decision(Verdict.DEAD)
    delay = jittered(schedule[attempts_made], jitter, rng)
    if status_code in (429, 503) and retry_after is not None and math.isfinite(retry_after):
        delay = max(delay, min(retry_after, retry_after_cap))
    if deadline is not None and now + delay >= deadline:
        return Decision(Verdict.DEAD)
    return Decision(Verdict.RETRY, delay)
