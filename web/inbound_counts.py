"""Inbound messages counted by channel and outcome, for /metrics, whatever the answer was.

A message request notes its channel once it is authenticated, and whether the message was
queued or was a repeat (`InboundCount`); the count is taken once the answer is made, so
refusals count too. A channel that was not authenticated is counted as `unknown`: the ids
in refused requests are not labels (anyone could make endless ones). With
SWITCHBOARD_METRICS_PER_CHANNEL off, the authenticated ones are all counted as `all`.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, g

from broker.core import metrics
from web.services import services

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

    def answered(self, status: int, *, per_channel: bool) -> None:
        """Count the request, answered with `status`, under its channel's id when
        `per_channel` (`metrics.channel_label`)."""
        if status < 300:
            outcome = "queued" if self.queued else "duplicate"
        elif status >= 500:
            outcome = "error"
        else:
            outcome = _REFUSALS.get(status, "invalid")
        channel = metrics.channel_label(self.channel, per_channel=per_channel)
        metrics.count(metrics.INBOUND_MESSAGES, channel, outcome)


def current() -> InboundCount:
    """The count of the request Flask is answering."""
    if "inbound_count" not in g:
        g.inbound_count = InboundCount()
    found: InboundCount = g.inbound_count
    return found


def count(response: Response) -> Response:
    """Count the message this answer was for (an `after_request` of the message routes)."""
    current().answered(response.status_code, per_channel=services().settings.metrics_per_channel)
    return response
