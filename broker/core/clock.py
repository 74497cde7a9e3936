"""Time, in one place, so that tests can reason about it."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def now_ms() -> int:
    return ms(time.time())


def ms(ts: float) -> int:
    """A time in whole milliseconds, as indexes score it; rounded as `iso` rounds it."""
    return round(ts * 1000)


def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as the hosted platform writes times."""
    whole = ms(ts)
    return datetime.fromtimestamp(whole // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{whole % 1000:03d}Z"
    )


def parse_iso(text: str) -> float:
    """Parse an ISO 8601 time; a time without a zone is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def ms_of_iso(text: str) -> int:
    """An ISO 8601 time in milliseconds; ValueError when it is not one."""
    return ms(parse_iso(text))
