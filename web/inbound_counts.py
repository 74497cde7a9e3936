"""Inbound messages counted by channel and outcome, for /metrics, whatever the answer was.

The message routes note the channel once they have authenticated it (`authenticated`), and
whether the message was queued or was a repeat (`accepted`); the count is taken after the
answer is made, so refusals count too. A channel that was not authenticated is counted as
`unknown`: the ids in refused requests are not labels (anyone could make endless ones).
"""

from __future__ import annotations

from flask import Response, g

from broker.core import metrics

_UNKNOWN = "unknown"
_REFUSALS = {
    401: "unauthorized",
    403: "unauthorized",
    404: "unknown_channel",
    429: "rate_limited",
}


def authenticated(channel_id: str) -> None:
    """The message comes from this channel."""
    g.inbound_channel = channel_id


def accepted(*, queued: bool) -> None:
    """The message was accepted: queued, or a repeat of one seen before."""
    g.inbound_outcome = "queued" if queued else "duplicate"


def count(response: Response) -> Response:
    """Count the message this answer was for (an `after_request` of the message routes)."""
    status = response.status_code
    if status < 300:
        outcome = g.get("inbound_outcome", "queued")
    elif status >= 500:
        outcome = "error"
    else:
        outcome = _REFUSALS.get(status, "invalid")
    metrics.count(metrics.INBOUND_MESSAGES, g.get("inbound_channel", _UNKNOWN), outcome)
    return response
