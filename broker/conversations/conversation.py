"""A conversation, and the record of it a bot turn reads and writes: its meta, in Redis the
hash `sb:{c:<conversation key>}:meta`.

Who writes which fields: the ingress sets the conversation's identity and its channel
(`arrival_fields`) and `dataBytes`, through `ingress.lua`; a bot turn or an agent action
sets the rest (`turn_fields`, through `turn_commit.lua`, which keeps `transcriptBytes`, the
bytes of the transcript's items); a failed turn its failures
(`failure_fields`, `turn_park.lua`). `turn_finish.lua` reads `offloadPending`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict

from broker.bots.bot import Version, as_version
from broker.bots.engine import Memory
from broker.core import ids
from broker.core.connection import HashFields

_COUNTER = "counter:"
#: What a bot turn that succeeded writes: its conversation has no failures to count.
NO_FAILURES: HashFields = {"turnFailures": 0, "turnFailedOn": ""}
OFFLOAD_PENDING_FIELD = "offloadPending"


class LogFields(TypedDict):
    sessionId: str
    botId: str
    channelId: str


@dataclass(frozen=True)
class Conversation:
    """One end user's conversation with one bot version on one channel: what the channel
    names with `conversationId` (`sessionId` on the wire), and its key inside Redis."""

    bot_id: str
    version: Version
    channel_id: str
    conversation_id: str
    key: str

    @classmethod
    def of(
        cls, bot_id: str, version: Version, channel_id: str, conversation_id: str
    ) -> Conversation:
        key = ids.conversation_key(bot_id, version, channel_id, conversation_id)
        return cls(bot_id, version, channel_id, conversation_id, key)

    def log_fields(self) -> LogFields:
        """The ids a log line about the conversation names (`logs.event`)."""
        return LogFields(
            sessionId=self.conversation_id, botId=self.bot_id, channelId=self.channel_id
        )

    @property
    def index_member(self) -> str:
        """The conversation in its bot version's indexes: `<channel id>|<conversation id>`."""
        return index_member(self.channel_id, self.conversation_id)


def index_member(channel_id: str, conversation_id: str) -> str:
    return f"{channel_id}|{conversation_id}"


def split_index_member(member: str) -> tuple[str, str]:
    """(channel id, conversation id) of an index member; channel ids hold no `|`."""
    channel_id, _, conversation_id = member.partition("|")
    return channel_id, conversation_id


@dataclass
class HandoverState:
    """Where the handover to a human stands (see `broker.conversations.handover`)."""

    paused: bool = False
    #: The delivery id of the offload whose answer is awaited, or "".
    offload_pending: str = ""
    offload_pending_at: float = 0.0
    #: When the agent last acted, or the bot was paused: auto-resume counts from here.
    agent_active_at: float = 0.0
    #: Messages that came while an agent had the conversation and still waited in its inbox
    #: when the bot got it back: the agent's, kept but not answered by the bot.
    agent_messages: int = 0


@dataclass
class ConversationMeta:
    conversation: Conversation
    memory: Memory = field(default_factory=Memory)
    #: Outbound messages sent so far, per channel: the wire's `messageCounter`.
    counters: dict[str, int] = field(default_factory=dict)
    handover: HandoverState = field(default_factory=HandoverState)
    last_activity_at: float = 0.0
    #: Failed turns in a row, and what the last one was blamed on (a message id, or a
    #: signal's digest); see `broker.conversations.dead_turns`.
    failures: int = 0
    failed_on: str = ""
    #: What its delivery ids are made from, and how many it made (`ids.delivery_id`); ""
    #: until its first turn.
    delivery_epoch: str = ""
    deliveries_made: int = 0

    @classmethod
    def from_redis(cls, key: str, raw: Mapping[str, str]) -> ConversationMeta:
        return cls(
            conversation=Conversation(
                raw["botId"],
                as_version(raw["version"]),
                raw["channelId"],
                raw["conversationId"],
                key,
            ),
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
                agent_messages=int(raw.get("agentMessages") or 0),
            ),
            last_activity_at=float(raw.get("lastActivityAt") or 0),
            failures=int(raw.get("turnFailures") or 0),
            failed_on=raw.get("turnFailedOn", ""),
            delivery_epoch=raw.get("deliveryEpoch", ""),
            deliveries_made=int(raw.get("deliveriesMade") or 0),
        )

    @property
    def channel_id(self) -> str:
        """The conversation's channel: its messages come in there and its replies go there."""
        return self.conversation.channel_id

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
            "agentMessages": handover.agent_messages,
            "deliveryEpoch": self.delivery_epoch,
            "deliveriesMade": self.deliveries_made,
            **{f"{_COUNTER}{channel_id}": count for channel_id, count in self.counters.items()},
        }

    def failure_fields(self) -> HashFields:
        """The failures counted so far (a turn that succeeds writes NO_FAILURES instead)."""
        return {"turnFailures": self.failures, "turnFailedOn": self.failed_on}

    @staticmethod
    def arrival_fields(conversation: Conversation) -> list[str]:
        """What the ingress sets as a message arrives, as field, value, ... for its script."""
        return [
            "botId",
            conversation.bot_id,
            "version",
            conversation.version,
            "conversationId",
            conversation.conversation_id,
            "channelId",
            conversation.channel_id,
        ]
