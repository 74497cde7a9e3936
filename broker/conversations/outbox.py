"""What a bot turn or an agent action sends, committed at once by `broker.deliveries.commit_turn`:
transcript items; deliveries to the conversation's channel webhook, numbered by its
`messageCounter`; and, where the bot has an offloading integration, `messages` and
`offload` events for it (SPEC 4).

Every transcript item of the turn also goes to the offloading webhook: the turn's items
travel together in one `messages` event, sent when the turn is committed or, when the
dialogue asks for an offload, just before the `offload` event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from broker.conversations import documents, transcript
from broker.core import clock, ids
from broker.delivery import records

_COUNTER = "counter:"

Actor = Literal["user", "bot", "agent"]


@dataclass
class Outbox:
    conversation_key: str
    bot_id: str
    conversation_id: str
    version: str
    #: Where `messages` and `offload` events go: the bot's offloading endpoint, if it has one.
    offloading_endpoint: str | None = None
    #: Outbound messages sent so far, per channel: SPEC 2's `messageCounter`.
    counters: dict[str, int] = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[records.NewDelivery] = field(default_factory=list)
    #: Transcript items not yet in a `messages` event.
    _unsent: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_conversation(
        cls, conversation_key: str, meta: dict[str, str], offloading_endpoint: str | None = None
    ) -> Outbox:
        """An empty outbox, counting on from the counters in the conversation's meta."""
        counters = {
            name.removeprefix(_COUNTER): int(value)
            for name, value in meta.items()
            if name.startswith(_COUNTER)
        }
        return cls(
            conversation_key,
            meta["botId"],
            meta["sessionId"],
            meta["version"],
            offloading_endpoint,
            counters,
        )

    @property
    def can_offload(self) -> bool:
        return self.offloading_endpoint is not None

    @property
    def channel_delivery_ids(self) -> list[str]:
        """The messages for the channel webhook, in the order they go."""
        return [d.id for d in self.deliveries if d.kind == "message"]

    def note(self, item: dict[str, Any]) -> None:
        """A transcript item that goes to no channel: a user message, or a notice for the
        offloading webhook."""
        self.transcript.append(item)
        self._unsent.append(item)

    def send(
        self, channel: dict[str, str] | None, message: dict[str, Any], *, actor: Actor = "bot"
    ) -> None:
        """A bot's or an agent's message: in the transcript, and to the channel unless it is
        gone (None)."""
        now = clock.now()
        self.note(transcript.item(actor, now, message))
        if channel is None:
            return
        channel_id = channel["id"]
        self.counters[channel_id] = self.counters.get(channel_id, 0) + 1
        body = documents.channel_message(
            conversation_id=self.conversation_id,
            verify_token=channel["verifyToken"],
            message=message,
            counter=self.counters[channel_id],
            bot_id=self.bot_id,
            at=now,
        )
        self._add(channel_id, "message", body, now)

    def offload(
        self,
        payload: dict[str, Any],
        history: Callable[[], list[dict[str, Any]]],
        *,
        expires_at: float,
    ) -> str:
        """Ask the offloading webhook to take the conversation over; returns the delivery's
        id, whose end (the answer) the conversation's next bot turn is told of. `history` gives
        the transcript items committed before this turn."""
        assert self.offloading_endpoint is not None, "an offload needs an offloading endpoint"
        self.flush()
        now = clock.now()
        body = documents.offload_event(
            payload=payload,
            transcript=[*history(), *self.transcript],
            conversation_id=self.conversation_id,
            version=self.version,
            bot_id=self.bot_id,
            at=now,
        )
        return self._add(
            self.offloading_endpoint, "offload", body, now, notify=True, expires_at=expires_at
        )

    def flush(self) -> None:
        """Send the transcript items not sent yet to the offloading webhook, as one event."""
        if self.offloading_endpoint is None or not self._unsent:
            self._unsent = []
            return
        now = clock.now()
        body = documents.messages_event(
            items=self._unsent,
            conversation_id=self.conversation_id,
            version=self.version,
            bot_id=self.bot_id,
            at=now,
        )
        self._add(self.offloading_endpoint, "messages", body, now)
        self._unsent = []

    def _add(
        self,
        endpoint_id: str,
        kind: str,
        body: dict[str, Any],
        at: float,
        *,
        notify: bool = False,
        expires_at: float = 0.0,
    ) -> str:
        delivery = records.NewDelivery(
            id=ids.delivery_id(self.conversation_key),
            endpoint_id=endpoint_id,
            kind=kind,
            bot_id=self.bot_id,
            conversation_id=self.conversation_id,
            body=body,
            created_at=at,
            notify=notify,
            expires_at=expires_at,
        )
        self.deliveries.append(delivery)
        return delivery.id

    def counter_fields(self) -> dict[str, int]:
        """The conversation meta fields that keep the counters."""
        return {f"{_COUNTER}{channel_id}": count for channel_id, count in self.counters.items()}
