"""Time, in one place, so that tests can reason about it.

`now` is this host's clock, or Redis's while the two are more than CLOCK_SKEW_WARNING apart
(`follow`, from the heartbeats): the times a process writes for the others to read (when a
retry is due, when a claim ends) and the signatures' `webhook-timestamp` then agree with the
other processes' however far off this host's clock is.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

#: Added to this host's clock (s): Redis's clock minus it, while they are far apart. (A
#: float is replaced whole, which is safe across threads.)
_offset = 0.0


def now() -> float:
    return time.time() + _offset


def now_ms() -> int:
    return ms(now())


def host_now() -> float:
    """This host's own clock, whatever `follow` said."""
    return time.time()


def follow(offset: float) -> None:
    """From now on, `now` is this host's clock plus `offset` seconds (0: the host's own)."""
    global _offset
    _offset = offset


def ms(ts: float) -> int:
    """A time in whole milliseconds, as indexes score it; rounded as `iso` rounds it."""
    return round(ts * 1000)


#: The last whole second `iso` wrote, and its text up to the milliseconds: a worker writes
#: many times a second, and formatting a date is most of the cost. (A tuple: it is replaced
#: whole, which is safe across threads.)
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00.")


def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as the hosted platform writes times."""
    global _last_second
    second, milli = divmod(ms(ts), 1000)
    known = _last_second
    if known[0] != second:
        known = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S."))
        _last_second = known
    return f"{known[1]}{milli:03d}Z"


def parse_iso(text: str) -> float:
    """Parse an ISO 8601 time; a time without a zone is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def ms_of_iso(text: str) -> int:
    """An ISO 8601 time in milliseconds; ValueError when it is not one."""
    return ms(parse_iso(text))
