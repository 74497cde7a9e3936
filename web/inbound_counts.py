"""Inbound messages counted by channel and outcome, for /metrics, whatever the answer was.

A message request notes its channel once it is authenticated, and whether the message was
queued or was a repeat (`InboundCount`); the count is taken once the answer is made, so
refusals count too. A channel that was not authenticated is counted as `unknown`: the ids
in refused requests are not labels (anyone could make endless ones).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, g

from broker.core import metrics

_REFUSALS = {
    401: "unauthorized",
    403: "unauthorized",
    404: "unknown_channel",
    429: "rate_limited",
}


@dataclass
class InboundCount:
    """What one message request counts as."""

    #: The channel the message comes from, once authenticated.
    channel: str = metrics.UNKNOWN_CHANNEL
    #: False when the message repeats one seen before.
    queued: bool = True

    def answered(self, status: int) -> None:
        """Count the request, answered with `status`."""
        if status < 300:
            outcome = "queued" if self.queued else "duplicate"
        elif status >= 500:
            outcome = "error"
        else:
            outcome = _REFUSALS.get(status, "invalid")
        metrics.count(metrics.INBOUND_MESSAGES, self.channel, outcome)


def current() -> InboundCount:
    """The count of the request Flask is answering."""
    if "inbound_count" not in g:
        g.inbound_count = InboundCount()
    found: InboundCount = g.inbound_count
    return found


def count(response: Response) -> Response:
    """Count the message this answer was for (an `after_request` of the message routes)."""
    current().answered(response.status_code)
    return response
