"""What a bot turn or an agent action sends: transcript items, and deliveries to the
session's channel webhook numbered by its `messageCounter`. Committed at once by
`broker.deliveries.commit_turn`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker import clock, deliveries, ids, outbound, transcript

_COUNTER = "counter:"


@dataclass
class Outbox:
    session_key: str
    bot_id: str
    session_id: str
    #: Outbound messages sent so far, per channel: SPEC 2's `messageCounter`.
    counters: dict[str, int] = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[deliveries.NewDelivery] = field(default_factory=list)

    @classmethod
    def for_session(cls, session_key: str, meta: dict[str, str]) -> Outbox:
        """An empty outbox, counting on from the counters in the session's meta."""
        counters = {
            name.removeprefix(_COUNTER): int(value)
            for name, value in meta.items()
            if name.startswith(_COUNTER)
        }
        return cls(session_key, meta["botId"], meta["sessionId"], counters)

    def note(self, item: dict[str, Any]) -> None:
        """A transcript item that is not sent anywhere (a user message)."""
        self.transcript.append(item)

    def send(
        self, channel: dict[str, str] | None, message: dict[str, Any], *, origin: str = ""
    ) -> None:
        """A bot message: in the transcript, and to the channel unless it is gone (None)."""
        now = clock.now()
        item = transcript.item("bot", now, message)
        if origin:
            item["origin"] = origin
        self.transcript.append(item)
        if channel is None:
            return
        channel_id = channel["id"]
        self.counters[channel_id] = self.counters.get(channel_id, 0) + 1
        body = outbound.channel_message(
            session_id=self.session_id,
            verify_token=channel["verifyToken"],
            message=message,
            counter=self.counters[channel_id],
            bot_id=self.bot_id,
            at=now,
        )
        self.deliveries.append(
            deliveries.NewDelivery(
                id=ids.delivery_id(self.session_key),
                endpoint_id=channel_id,
                kind="message",
                bot_id=self.bot_id,
                session_id=self.session_id,
                body=body,
                created_at=now,
            )
        )

    def counter_fields(self) -> dict[str, int]:
        """The session meta fields that keep the counters."""
        return {f"{_COUNTER}{channel_id}": count for channel_id, count in self.counters.items()}
