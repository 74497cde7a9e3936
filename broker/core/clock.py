"""Time, in one place, so that tests can reason about it."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as the hosted platform writes times."""
    ms = round(ts * 1000)
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z"
    )


def parse_iso(text: str) -> float:
    """Parse an ISO 8601 time; a time without a zone is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
