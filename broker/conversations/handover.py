"""Handing a conversation to a human and back (docs/wire-contract.md §4), as bot turns and agent
actions see it.

A conversation is in one of three hands, kept in its conversation meta:

- the bot's, the usual case;
- waiting for an offload's answer (`offloadPending` holds the offload's delivery id): the
  user's new messages wait in the inbox, in order, until the answer comes;
- an agent's (`paused`): the user's messages go to the offloading webhook only, and the
  bot does not answer them.

The bot turn learns what happened elsewhere from the conversation's signals: the end of the
offload's delivery (the endpoint's answer, or the delivery's death), and timers that fired
(the answer is late; the agent has been silent too long). Timers sit on `sb:timers`,
outside the conversation's hash slot: they are written before the commit that needs them and
removed after the commit that settles them, so a crash can leave at most a timer that
fires for nothing, and a signal that no longer fits is ignored.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from broker.conversations.conversation import Conversation, HandoverState
from broker.core import clock, keys, logs
from broker.core.connection import Pipeline, Redis, index_shards
from broker.core.defaults import MAX_READ_BYTES
from broker.core.settings import Settings

log = logging.getLogger(__name__)

OFFLOAD_TIMER = "offload"
RESUME_TIMER = "resume"
TIMER_NAMES = (OFFLOAD_TIMER, RESUME_TIMER)
#: A timer is taken as due this much before its time: the clocks of the scheduler's
#: machine and the worker's may differ a little.
_CLOCK_SLACK = 1.0
#: The event message the offloading webhook gets when the bot takes a conversation back.
RESUMED_EVENT = "bot_resumed"


def timer_member(conversation_key: str, name: str) -> str:
    return f"{conversation_key}|{name}"


def split_timer(member: str) -> tuple[str, str]:
    conversation_key, _, name = member.partition("|")
    return conversation_key, name


class Settled(enum.Enum):
    """What a signal comes to, for the turn to act on."""

    NOTHING = "nothing"
    #: The offload was refused, answered wrongly, never delivered or not answered in time:
    #: the dialogue goes to its "offloading failed" state.
    OFFLOAD_FAILED = "offload_failed"
    #: The offload was taken; the bot goes on (`pauseBot` false) or is paused.
    OFFLOAD_TAKEN = "offload_taken"
    #: The agent was silent too long: the bot has the conversation again.
    RESUMED = "resumed"


@dataclass(frozen=True)
class OffloadAnswer:
    success: bool
    pause: bool
    #: Why it failed, in words, for the log.
    reason: str = ""


def read_answer(signal: dict[str, Any]) -> OffloadAnswer:
    """What the end of an offload delivery says: `{"offloadSuccess": bool, "pauseBot": bool}`
    from a 2xx answer; anything else is a failure."""
    if not signal.get("delivered"):
        return OffloadAnswer(False, False, f"not delivered: {signal.get('error') or 'failed'}")
    text = signal.get("response") or ""
    try:
        answer = json.loads(text)
    except ValueError:
        if len(text.encode("utf-8", "surrogatepass")) >= MAX_READ_BYTES:
            return OffloadAnswer(False, False, f"the answer is over {MAX_READ_BYTES:,} bytes")
        return OffloadAnswer(False, False, "the answer is not JSON")
    if not isinstance(answer, dict) or not isinstance(answer.get("offloadSuccess"), bool):
        return OffloadAnswer(False, False, "the answer has no offloadSuccess true or false")
    pause = answer.get("pauseBot")
    if pause is None:  # left out, or null: the bot is not paused
        pause = False
    if not isinstance(pause, bool):
        return OffloadAnswer(False, False, "pauseBot in the answer is not true or false")
    if not answer["offloadSuccess"]:
        return OffloadAnswer(False, False, "the endpoint answered offloadSuccess: false")
    return OffloadAnswer(True, pause)


@dataclass
class IndexChanges:
    """Writes to indexes outside the conversation's hash slot that go with one commit."""

    adds: dict[tuple[str, str], float] = field(default_factory=dict)
    removes: set[tuple[str, str]] = field(default_factory=set)

    def add(self, index: str, member: str, score: float) -> None:
        self.removes.discard((index, member))
        self.adds[(index, member)] = score

    def remove(self, index: str, member: str) -> None:
        self.adds.pop((index, member), None)
        self.removes.add((index, member))

    def write_adds(self, r: Redis) -> None:
        """Before the commit: a crash after it leaves the entries to be found."""
        if self.adds:
            pipe = r.pipeline(transaction=False)
            shards = index_shards(r)
            for (index, member), score in self.adds.items():
                pipe.zadd(keys.shard_of(index, member, shards), {member: score})
            pipe.execute()

    def write_removes(self, r: Redis) -> None:
        """After the commit: a crash before it leaves entries that fire for nothing."""
        if self.removes:
            pipe = r.pipeline(transaction=False)
            self.add_removes(pipe)
            pipe.execute()

    def add_removes(self, pipe: Pipeline) -> None:
        shards = index_shards(pipe)
        for index, member in self.removes:
            pipe.zrem(keys.shard_of(index, member, shards), member)

    def merge(self, other: IndexChanges) -> None:
        for (index, member), score in other.adds.items():
            self.add(index, member, score)
        for index, member in other.removes:
            self.remove(index, member)


@dataclass
class Handover:
    """One turn's view of a conversation's handover: it changes `state`, saved with the
    turn's commit, and gathers the index writes that go with it."""

    settings: Settings
    conversation: Conversation
    state: HandoverState
    changes: IndexChanges = field(default_factory=IndexChanges)

    @property
    def waiting(self) -> bool:
        """True while an offload's answer is awaited: the user's messages wait for it."""
        return bool(self.state.offload_pending)

    def offload_sent(self, delivery_id: str, now: float) -> None:
        self.state.offload_pending, self.state.offload_pending_at = delivery_id, now
        self._set_timer(OFFLOAD_TIMER, now + self.settings.offload_timeout)

    def settle(self, signal: dict[str, Any], now: float) -> Settled:
        """Apply one signal."""
        if signal.get("kind") == "delivery":
            return self._delivery_ended(signal, now)
        if signal.get("kind") == "timer" and signal.get("name") == OFFLOAD_TIMER:
            return self._offload_timer(now)
        if signal.get("kind") == "timer" and signal.get("name") == RESUME_TIMER:
            return self._resume_timer(now)
        self._log(logging.WARNING, "handover: unknown signal ignored", signal=signal)
        return Settled.NOTHING

    def _delivery_ended(self, signal: dict[str, Any], now: float) -> Settled:
        if not self.state.offload_pending or signal.get("deliveryId") != self.state.offload_pending:
            # A replayed offload, or one already settled by its timer.
            return Settled.NOTHING
        self._offload_settled()
        answer = read_answer(signal)
        if not answer.success:
            self._log(
                logging.INFO,
                "offload failed",
                deliveryId=signal.get("deliveryId"),
                reason=answer.reason,
            )
            return Settled.OFFLOAD_FAILED
        if answer.pause:
            self.pause(now)
        return Settled.OFFLOAD_TAKEN

    def _offload_timer(self, now: float) -> Settled:
        if not self.state.offload_pending:
            self.changes.remove(keys.TIMERS, self._timer(OFFLOAD_TIMER))
            return Settled.NOTHING
        due = self.state.offload_pending_at + self.settings.offload_timeout
        if now + _CLOCK_SLACK < due:
            self._set_timer(OFFLOAD_TIMER, due)
            return Settled.NOTHING
        self._log(
            logging.INFO, "offload has no answer in time", deliveryId=self.state.offload_pending
        )
        self._offload_settled()
        return Settled.OFFLOAD_FAILED

    def _resume_timer(self, now: float) -> Settled:
        if not self.state.paused:
            self.changes.remove(keys.TIMERS, self._timer(RESUME_TIMER))
            return Settled.NOTHING
        due = self.state.agent_active_at + self.settings.resume_after
        if now + _CLOCK_SLACK < due:
            self._set_timer(RESUME_TIMER, due)
            return Settled.NOTHING
        self.resume()
        return Settled.RESUMED

    def _offload_settled(self) -> None:
        self.state.offload_pending, self.state.offload_pending_at = "", 0.0
        self.changes.remove(keys.TIMERS, self._timer(OFFLOAD_TIMER))

    def pause(self, now: float) -> None:
        self.state.paused = True
        self.state.agent_active_at = now
        self._set_timer(RESUME_TIMER, now + self.settings.resume_after)
        self.changes.add(self._paused_index(), self.conversation.index_member, clock.ms(now))

    def agent_acted(self, now: float) -> None:
        """The agent said something: the silence that ends a pause starts again."""
        if self.state.paused:
            self.state.agent_active_at = now
            self._set_timer(RESUME_TIMER, now + self.settings.resume_after)

    def resume(self) -> None:
        """The bot has the conversation again; an offload still awaited is given up."""
        self.state.paused = False
        self.changes.remove(keys.TIMERS, self._timer(RESUME_TIMER))
        self.changes.remove(self._paused_index(), self.conversation.index_member)
        if self.state.offload_pending:
            self._offload_settled()

    def _paused_index(self) -> str:
        return keys.bot_paused(self.conversation.bot_id, self.conversation.version)

    def _log(self, level: int, what: str, **fields: Any) -> None:
        logs.event(log, level, what, **self.conversation.log_fields(), **fields)

    def _timer(self, name: str) -> str:
        return timer_member(self.conversation.key, name)

    def _set_timer(self, name: str, at: float) -> None:
        self.changes.add(keys.TIMERS, self._timer(name), at)


def resumed_notice(by: str, silent_for: float | None = None) -> dict[str, Any]:
    """The event message that tells the offloading webhook the bot is back: `by` the agent
    (hand-back), or after a `timeout` of `silent_for` seconds without a word from the agent."""
    data: dict[str, Any] = {"by": by}
    if silent_for is not None:
        data["agentSilentSeconds"] = silent_for
    return {"type": "event", "name": RESUMED_EVENT, "data": data}
