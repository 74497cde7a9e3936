"""Answer bodies of the API, as /openapi.json describes them (docs/wire-contract.md §1 and §6).

Handlers build their answers as plain dicts; these models are the document of
those shapes, and the API tests check real answers against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from broker.core.defaults import SESSION_DELIVERIES
from broker.delivery.delivery_index import SCAN_LIMIT


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Queued(_Answer):
    """The message is durably queued; the bot will answer through the channel's webhook."""

    messageId: str
    sessionId: str
    status: Literal["queued"]


class Health(_Answer):
    """The process is alive."""

    status: Literal["ok"]
    version: str


class Readiness(_Answer):
    """Redis is reachable and a worker and the scheduler are alive (503 when not)."""

    status: Literal["ready", "not ready"]
    checks: dict[str, Any]
    #: When not ready: `{"code": "unavailable", "message": <the reason>}`.
    error: dict[str, str] | None = None


class Bot(_Answer):
    """A bot with its DRAFT and LIVE definitions."""

    id: str
    name: str
    createdAt: str
    updatedAt: str
    publishedAt: str
    draft: dict[str, Any]
    live: dict[str, Any]


class BotList(_Answer):
    """A page of bots, newest first."""

    items: list[Bot]
    total: int
    page: int
    limit: int


class Channel(_Answer):
    """A Webhook channel; the access token is shown only when the channel is created."""

    id: str
    botId: str
    webhookUrl: str
    verifyToken: str
    signingSecret: str
    version: Literal["DRAFT", "LIVE"]
    messagesUrl: str
    retrySchedule: list[float]
    connectTimeout: float
    totalTimeout: float
    rateLimit: float = Field(description="Inbound messages per second (0: no limit).")
    createdAt: str


class CreatedChannel(Channel):
    """The new channel, with its access token (shown this once)."""

    accessToken: str


class ChannelList(_Answer):
    """A bot's Webhook channels."""

    items: list[Channel]
    total: int
    page: int
    limit: int


class Endpoint(_Answer):
    """An endpoint's health and state."""

    id: str
    kind: Literal["channel", "offloading"]
    botId: str
    url: str
    state: Literal["healthy", "failing", "circuit_open", "disabled"]
    successRate: float | None
    disabledReason: str | None = None
    lastError: str | None = None
    lastSuccessAt: str | None = None


class EnabledEndpoint(Endpoint):
    """The endpoint, enabled again, and how many of its session queues were resumed."""

    queuesResumed: int


class EndpointList(_Answer):
    """A page of endpoints."""

    items: list[Endpoint]
    total: int
    page: int
    limit: int


class Attempt(BaseModel):
    at: str
    durationMs: float
    statusCode: int | None = None
    error: str | None = None
    response: str | None = None


class Delivery(_Answer):
    """A delivery with its attempts."""

    id: str
    endpointId: str
    botId: str
    sessionId: str
    kind: Literal["message", "messages", "offload"]
    status: Literal["queued", "waiting", "delivered", "dead"]
    createdAt: str
    body: dict[str, Any]
    attempts: list[Attempt]
    deliveredAt: str | None = None
    nextAttemptAt: str | None = None
    deadAt: str | None = None


class DeliveryList(_Answer):
    """A page of deliveries."""

    items: list[Delivery]
    total: int
    page: int
    limit: int
    scanLimited: bool | None = Field(
        default=None,
        description="Present and true when the listing did not look at every delivery: by "
        f"status (other than dead), it stopped after the newest {SCAN_LIMIT:,} deliveries "
        "(`total` counts the matches among them, pages past them are empty; narrow it by "
        "`endpointId`); by session, a conversation of that id has had more deliveries than "
        f"the newest {SESSION_DELIVERIES:,} it keeps listed.",
    )


class Replayed(_Answer):
    """Whether the delivery was queued again, or its next retry made due now (false when it
    is already under way)."""

    id: str
    replayed: bool


class BulkReplayed(_Answer):
    """How many dead letters matched, and how many were queued again."""

    replayed: int = Field(ge=0)
    matched: int = Field(ge=0)


class DeadTurn(_Answer):
    """A message (or a signal) whose bot turn kept failing, parked with its last error."""

    id: str
    botId: str
    version: Literal["DRAFT", "LIVE"]
    channelId: str
    sessionId: str
    kind: Literal["message", "signal"]
    item: Any = Field(description="The message or signal as it waited: JSON, or its text.")
    error: str
    attempts: int = Field(ge=1)
    deadAt: str


class DeadTurnList(_Answer):
    """A page of dead letters of turns, newest first."""

    items: list[DeadTurn]
    total: int
    page: int
    limit: int


class DeadTurnReplayed(_Answer):
    """The message is back at the end of its conversation's inbox."""

    id: str
    replayed: Literal[True]


class AdminToken(_Answer):
    """An admin token made with `switchboard token create` (never the token itself)."""

    id: str
    description: str
    createdAt: str


class AdminTokenList(_Answer):
    """The admin tokens made with `switchboard token create`, oldest first."""

    items: list[AdminToken]
    total: int
    page: int
    limit: int
