"""Bot turns: one conversation's signals and waiting messages, run through its bot, in order.

A turn holds the conversation's lock and reads its meta, its signals and a batch of its inbox
in one round trip. Signals come first (an offload's answer, a timer that fired: see
`broker.conversations.handover`), then the messages, one by one, until the dialogue waits for an
offload's answer. It commits the new state, the transcript and the outbound deliveries
in one script, trimming what it used of the inbox and the signals in the same step. A
crash before the commit leaves everything for the next try; a crash after it leaves
nothing to redo.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from broker.bots import bot_store
from broker.bots.actions import Actions
from broker.bots.engine import Engine, Turn, absorb
from broker.channels import channel_store
from broker.channels.channel import Channel
from broker.conversations import transcript
from broker.conversations.conversation import ConversationMeta
from broker.conversations.handover import (
    TIMER_NAMES,
    Handover,
    Settled,
    resumed_notice,
    timer_member,
)
from broker.conversations.outbox import Outbox
from broker.core import clock, keys, logs, scripts
from broker.core.connection import Redis
from broker.core.defaults import TURN_BATCH
from broker.core.errors import NotFound
from broker.core.locks import Lock
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery import fanout, health, offloading

log = logging.getLogger(__name__)


def run_pending(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    conversation_key: str,
    actions: Actions | None = None,
) -> int:
    """Work through everything waiting for one conversation; returns messages processed.
    The bot's API calls and custom actions go through `actions` (none: they fail)."""
    lock = Lock(r, keys.conversation_lock(conversation_key), settings.claim_lease)
    if not lock.acquire():
        return 0  # another worker has the conversation; it drains the inbox before letting go
    processed = 0
    try:
        while True:
            lock.extend()
            r.zadd(keys.TURNS, {conversation_key: clock.now() + settings.claim_lease}, xx=True)
            work = _read(r, conversation_key)
            if work.idle:
                # Leave the schedule first: an ingress that finds the flag still set
                # puts the conversation back on it.
                r.zrem(keys.TURNS, conversation_key)
                if scripts.run(
                    r,
                    "turn_finish",
                    [
                        keys.conversation_inbox(conversation_key),
                        keys.conversation_pending(conversation_key),
                        keys.conversation_signals(conversation_key),
                        keys.conversation_meta(conversation_key),
                    ],
                    [],
                ):
                    return processed
                r.zadd(keys.TURNS, {conversation_key: clock.now() + settings.claim_lease})
                continue
            processed += _run(r, settings, sender, conversation_key, work, actions)
    finally:
        lock.release()


@dataclass(frozen=True)
class _Work:
    #: None when the conversation was deleted.
    meta: ConversationMeta | None
    signals: list[dict[str, Any]]
    messages: list[dict[str, Any]]

    @property
    def idle(self) -> bool:
        """Nothing to do: no signal, and no message or only ones that wait for an answer."""
        if self.signals:
            return False
        waiting = self.meta is not None and bool(self.meta.handover.offload_pending)
        return not self.messages or waiting


def _read(r: Redis, conversation_key: str) -> _Work:
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(keys.conversation_meta(conversation_key))
    pipe.lrange(keys.conversation_signals(conversation_key), 0, TURN_BATCH - 1)
    pipe.lrange(keys.conversation_inbox(conversation_key), 0, TURN_BATCH - 1)
    raw_meta, signals, messages = pipe.execute()
    return _Work(
        ConversationMeta.from_redis(conversation_key, raw_meta) if raw_meta else None,
        [json.loads(s) for s in signals],
        [json.loads(m) for m in messages],
    )


def _run(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    conversation_key: str,
    work: _Work,
    actions: Actions | None,
) -> int:
    if work.meta is None:
        # The conversation was deleted while its messages waited: its timers go too.
        r.delete(
            keys.conversation_inbox(conversation_key), keys.conversation_signals(conversation_key)
        )
        r.zrem(keys.TIMERS, *(timer_member(conversation_key, name) for name in TIMER_NAMES))
        return len(work.messages)
    conversation = work.meta.conversation
    try:
        engine: Engine | None = Engine(
            bot_store.program_of(r, conversation.bot_id, conversation.version), actions
        )
    except NotFound:
        log.warning(
            "bot %s is gone; the messages of its conversation are not answered",
            conversation.bot_id,
        )
        engine = None
    endpoint = offloading.endpoint_of(r, conversation.bot_id)
    turn = _BotTurn(r, settings, work.meta, engine, endpoint)
    for signal in work.signals:
        turn.settle(signal)
    used = 0
    started = time.monotonic()
    for message in work.messages:
        if turn.handover.waiting:
            break  # the rest wait for the offload's answer, in the inbox
        if time.monotonic() - started > settings.claim_lease / 2:
            break  # slow API calls: commit, and renew the lock before the rest
        turn.take(message)
        used += 1
    turn.commit(sender, trim=used, trim_signals=len(work.signals))
    logs.event(
        log,
        logging.INFO,
        "bot turn",
        sessionId=conversation.conversation_id,
        botId=conversation.bot_id,
        messageIds=[m["messageId"] for m in work.messages[:used]],
        signals=len(work.signals),
        deliveryIds=[d.id for d in turn.outbox.deliveries],
    )
    return used


class _BotTurn:
    """One pass of a conversation's bot turn: what it changes, gathered for one commit."""

    def __init__(
        self,
        r: Redis,
        settings: Settings,
        meta: ConversationMeta,
        engine: Engine | None,
        offloading_endpoint: str | None,
    ) -> None:
        self.r = r
        self.settings = settings
        self.meta = meta
        self.engine = engine
        self.outbox = Outbox.for_conversation(meta, offloading_endpoint)
        self.handover = Handover(settings, meta.conversation, meta.handover)
        self._channels: dict[str, Channel | None] = {}

    def settle(self, signal: dict[str, Any]) -> None:
        """Act on one signal: an offload's answer, or a timer."""
        now = clock.now()
        settled = self.handover.settle(signal, now)
        if settled is Settled.OFFLOAD_FAILED and self.engine is not None:
            self._apply(self.engine.offload_failed(self.meta.memory), self.meta.channel_id)
        elif settled is Settled.RESUMED:
            notice = resumed_notice("timeout", self.settings.resume_after)
            self.outbox.note(transcript.item("bot", now, notice))

    def take(self, message: dict[str, Any]) -> None:
        """One user message: answered by the bot, or only kept while an agent has the
        conversation (it still reaches the offloading webhook)."""
        self.outbox.received_at = message["receivedAt"]
        user_item = transcript.user_message(message, self.meta.conversation.bot_id)
        self.outbox.note(transcript.item("user", message["receivedAt"], user_item))
        if self.engine is None or self.meta.handover.paused:
            self.meta.memory = absorb(self.meta.memory, message)
            return
        turn = self.engine.step(self.meta.memory, message, can_offload=self.outbox.can_offload)
        self._apply(turn, message["channelId"])

    def _apply(self, turn: Turn, channel_id: str) -> None:
        self.meta.memory = turn.memory
        channel = self._channel(channel_id)
        for output in turn.outputs:
            if output.kind == "message":
                self.outbox.send(channel, output.body)
            elif output.kind == "offload":
                if self._offloading_disabled():
                    # No one takes it until an operator enables the endpoint: fail now.
                    assert self.engine is not None
                    self._apply(self.engine.offload_failed(self.meta.memory), channel_id)
                    return
                now = clock.now()
                delivery_id = self.outbox.offload(
                    output.body["payload"],
                    self._history,
                    expires_at=now + self.settings.offload_timeout,
                )
                self.handover.offload_sent(delivery_id, now)

    def commit(self, sender: TaskSender, *, trim: int, trim_signals: int) -> None:
        self.outbox.flush()
        self.meta.counters = self.outbox.counters
        self.meta.last_activity_at = clock.now()
        self.handover.changes.write_adds(self.r)
        fanout.commit_turn(
            self.r,
            self.settings,
            sender,
            self.meta.conversation.key,
            trim=trim,
            trim_signals=trim_signals,
            meta=self.meta.turn_fields(),
            transcript_items=self.outbox.transcript,
            new=self.outbox.deliveries,
        )
        self.handover.changes.write_removes(self.r)

    def _offloading_disabled(self) -> bool:
        endpoint_id = self.outbox.offloading_endpoint
        return endpoint_id is not None and health.is_disabled(self.r, endpoint_id)

    def _history(self) -> list[dict[str, Any]]:
        """The transcript committed before this turn."""
        items = self.r.lrange(keys.conversation_transcript(self.meta.conversation.key), 0, -1)
        return [json.loads(item) for item in items]

    def _channel(self, channel_id: str) -> Channel | None:
        """A channel of the conversation, or None (logged) when it was removed since."""
        if channel_id not in self._channels:
            try:
                self._channels[channel_id] = channel_store.get(self.r, channel_id)
            except NotFound:
                log.warning(
                    "channel %s is gone; the replies to its messages are not sent", channel_id
                )
                self._channels[channel_id] = None
        return self._channels[channel_id]
