"""What a bot turn or an agent action sends, committed at once by `fanout.commit_turn`:
transcript items; deliveries to the conversation's channel webhook, numbered by its
`messageCounter`; and, where the bot has an offloading integration, `messages` and
`offload` events for it (docs/wire-contract.md §4).

Every transcript item of the turn also goes to the offloading webhook: the turn's items
travel together in one `messages` event, sent when the turn is committed or, when the
dialogue asks for an offload, just before the `offload` event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from broker.bots.engine import Output
from broker.channels.channel import Channel
from broker.conversations import documents, transcript
from broker.conversations.conversation import NO_FAILURES, Conversation, ConversationMeta
from broker.core import clock, ids
from broker.core.defaults import TRANSCRIPT_MAX
from broker.delivery.fanout import TurnCommit
from broker.delivery.records import Delivery, DeliveryKind

Actor = Literal["user", "bot", "agent"]


@dataclass
class Outbox:
    conversation: Conversation
    #: Where `messages` and `offload` events go: the bot's offloading endpoint, if it has one.
    offloading_endpoint: str | None = None
    #: Outbound messages sent so far, per channel: the wire's `messageCounter`.
    counters: dict[str, int] = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    #: When the user message being answered arrived (0: none, for an agent's action or a
    #: timer): the start of its replies' end-to-end latency.
    received_at: float = 0.0
    #: What the delivery ids are made from, and how many the conversation made so far
    #: (`ids.delivery_id`).
    epoch: str = ""
    made: int = 0
    #: The inbox message or signal being answered, as stored (part of the delivery ids).
    cause: str = ""
    #: Transcript items not yet in a `messages` event.
    _unsent: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_conversation(
        cls, meta: ConversationMeta, offloading_endpoint: str | None = None
    ) -> Outbox:
        """An empty outbox, counting on from the conversation's counters."""
        return cls(
            meta.conversation,
            offloading_endpoint,
            dict(meta.counters),
            epoch=meta.delivery_epoch,
            made=meta.deliveries_made,
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
        self, channel: Channel | None, message: dict[str, Any], *, actor: Actor = "bot"
    ) -> None:
        """A bot's or an agent's message: in the transcript, and to the channel unless it is
        gone (None)."""
        now = clock.now()
        self.note(transcript.item(actor, now, message))
        if channel is None:
            return
        self.counters[channel.id] = self.counters.get(channel.id, 0) + 1
        body = documents.channel_message(
            conversation_id=self.conversation.conversation_id,
            verify_token=channel.verify_token,
            message=message,
            counter=self.counters[channel.id],
            bot_id=self.conversation.bot_id,
            at=now,
        )
        self._add(channel.id, "message", body, now)

    def send_outputs(
        self,
        channel: Channel | None,
        outputs: Iterable[Output],
        offload: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """A dialogue's outputs, in order: its messages sent as the bot's, each offload it asks
        for given to `offload` (none: there is none, the dialogue ran without offloading)."""
        for output in outputs:
            if output.kind == "message":
                self.send(channel, output.body)
            elif output.kind == "offload" and offload is not None:
                offload(output.body)

    def offload(
        self,
        payload: dict[str, Any],
        history: Callable[[int, int], list[dict[str, Any]]],
        *,
        transcript_bytes: int,
        expires_at: float,
    ) -> str:
        """Ask the offloading webhook to take the conversation over; returns the delivery's
        id, whose end (the answer) the conversation's next bot turn is told of. The event's
        transcript is what the conversation's keeps with this turn's items: at most
        TRANSCRIPT_MAX items and `transcript_bytes` bytes, the newest. `history(items, bytes)`
        gives the newest transcript items committed before this turn within those limits."""
        assert self.offloading_endpoint is not None, "an offload needs an offloading endpoint"
        self.flush()
        now = clock.now()
        kept = transcript.newest_within(self.transcript, TRANSCRIPT_MAX, transcript_bytes)
        if len(kept) == len(self.transcript):
            room = transcript_bytes - sum(transcript.size(item) for item in kept)
            kept = [*history(TRANSCRIPT_MAX - len(kept), room), *kept]
        body = documents.offload_event(
            payload=payload,
            transcript=kept,
            conversation_id=self.conversation.conversation_id,
            channel_id=self.conversation.channel_id,
            version=self.conversation.version,
            bot_id=self.conversation.bot_id,
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
            conversation_id=self.conversation.conversation_id,
            channel_id=self.conversation.channel_id,
            version=self.conversation.version,
            bot_id=self.conversation.bot_id,
            at=now,
        )
        self._add(self.offloading_endpoint, "messages", body, now)
        self._unsent = []

    def close(
        self,
        meta: ConversationMeta,
        at: float,
        *,
        trim: int = 0,
        trim_signals: int = 0,
        clear_failures: bool = False,
    ) -> TurnCommit:
        """End the turn: the transcript items not sent yet go to the offloading webhook, `meta`
        takes the counters on and its last activity at `at`, and what the turn saves is
        gathered (with the failures counted so far cleared, when `clear_failures`)."""
        self.flush()
        meta.counters = self.counters
        meta.delivery_epoch, meta.deliveries_made = self.epoch, self.made
        meta.last_activity_at = at
        fields = meta.turn_fields()
        return TurnCommit(
            meta.conversation.key,
            trim=trim,
            trim_signals=trim_signals,
            meta={**fields, **NO_FAILURES} if clear_failures else fields,
            transcript=self.transcript,
            deliveries=self.deliveries,
        )

    def _add(
        self,
        endpoint_id: str,
        kind: DeliveryKind,
        body: dict[str, Any],
        at: float,
        *,
        notify: bool = False,
        expires_at: float = 0.0,
    ) -> str:
        if not self.epoch:  # a conversation with no bot turn yet, that an agent writes in
            self.epoch = ids.delivery_epoch(None)
        self.made += 1
        delivery = Delivery.new(
            id=ids.delivery_id(self.conversation.key, self.epoch, self.made, self.cause),
            endpoint_id=endpoint_id,
            kind=kind,
            bot_id=self.conversation.bot_id,
            conversation_id=self.conversation.conversation_id,
            body=body,
            created_at=at,
            notify=notify,
            expires_at=expires_at,
            received_at=self.received_at,
        )
        self.deliveries.append(delivery)
        return delivery.id
