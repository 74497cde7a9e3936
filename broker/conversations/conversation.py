"""A conversation, and the record of it a bot turn reads and writes: its meta, in Redis the
hash `sb:{c:<conversation key>}:meta`.

Who writes which fields: the ingress sets the conversation's identity and its latest
channel (`arrival_fields`, through `ingress.lua`); a bot turn or an agent action sets the
rest (`turn_fields`, through `turn_commit.lua`). `turn_finish.lua` reads `offloadPending`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from broker.bots.bot import Version, as_version
from broker.bots.engine import Memory
from broker.core import ids
from broker.core.connection import HashFields

_COUNTER = "counter:"
OFFLOAD_PENDING_FIELD = "offloadPending"


@dataclass(frozen=True)
class Conversation:
    """One end user's conversation with one bot version: what a channel names with
    `conversationId` (`sessionId` on the wire), and its key inside Redis."""

    bot_id: str
    version: Version
    conversation_id: str
    key: str

    @classmethod
    def of(cls, bot_id: str, version: Version, conversation_id: str) -> Conversation:
        return cls(
            bot_id, version, conversation_id, ids.conversation_key(bot_id, version, conversation_id)
        )


@dataclass
class HandoverState:
    """Where the handover to a human stands (see `broker.conversations.handover`)."""

    paused: bool = False
    #: The delivery id of the offload whose answer is awaited, or "".
    offload_pending: str = ""
    offload_pending_at: float = 0.0
    #: When the agent last acted, or the bot was paused: auto-resume counts from here.
    agent_active_at: float = 0.0


@dataclass
class ConversationMeta:
    conversation: Conversation
    #: The channel the latest message came in on; replies go there.
    channel_id: str
    memory: Memory = field(default_factory=Memory)
    #: Outbound messages sent so far, per channel: the wire's `messageCounter`.
    counters: dict[str, int] = field(default_factory=dict)
    handover: HandoverState = field(default_factory=HandoverState)
    last_activity_at: float = 0.0

    @classmethod
    def from_redis(cls, key: str, raw: Mapping[str, str]) -> ConversationMeta:
        return cls(
            conversation=Conversation(
                raw["botId"], as_version(raw["version"]), raw["conversationId"], key
            ),
            channel_id=raw["channelId"],
            memory=Memory.from_json(raw.get("memory")),
            counters={
                name.removeprefix(_COUNTER): int(value)
                for name, value in raw.items()
                if name.startswith(_COUNTER)
            },
            handover=HandoverState(
                paused=raw.get("paused") == "1",
                offload_pending=raw.get(OFFLOAD_PENDING_FIELD, ""),
                offload_pending_at=float(raw.get("offloadPendingAt") or 0),
                agent_active_at=float(raw.get("agentActiveAt") or 0),
            ),
            last_activity_at=float(raw.get("lastActivityAt") or 0),
        )

    def turn_fields(self) -> HashFields:
        """What a bot turn or an agent action saves."""
        handover = self.handover
        return {
            "memory": self.memory.to_json(),
            "lastActivityAt": repr(self.last_activity_at),
            "paused": "1" if handover.paused else "0",
            OFFLOAD_PENDING_FIELD: handover.offload_pending,
            "offloadPendingAt": repr(handover.offload_pending_at),
            "agentActiveAt": repr(handover.agent_active_at),
            **{f"{_COUNTER}{channel_id}": count for channel_id, count in self.counters.items()},
        }

    @staticmethod
    def arrival_fields(conversation: Conversation, channel_id: str) -> list[str]:
        """What the ingress sets as a message arrives, as field, value, ... for its script."""
        return [
            "botId",
            conversation.bot_id,
            "version",
            conversation.version,
            "conversationId",
            conversation.conversation_id,
            "channelId",
            channel_id,
        ]
