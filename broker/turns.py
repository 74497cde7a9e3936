"""Bot turns: one session's waiting messages, run through its bot, in order.

A turn holds the session's lock, reads a batch from the inbox, runs the engine,
and commits the new state, the transcript and the outbound deliveries in one
script, trimming the inbox in the same step. A crash before the commit leaves the
messages in the inbox for the next try; a crash after it leaves nothing to redo.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from broker import bots, channels, clock, deliveries, keys, scripts, transcript
from broker.defaults import TURN_BATCH
from broker.engine import Engine, SessionState
from broker.errors import NotFound
from broker.locks import Lock
from broker.outbox import Outbox
from broker.redis_conn import Redis
from broker.sender import TaskSender
from broker.settings import Settings

log = logging.getLogger(__name__)


def run_pending(r: Redis, settings: Settings, sender: TaskSender, session: str) -> int:
    """Work through everything waiting in one session's inbox; returns messages processed."""
    lock = Lock(r, keys.session_lock(session), settings.claim_lease)
    if not lock.acquire():
        return 0  # another worker has the session; it drains the inbox before letting go
    processed = 0
    try:
        while True:
            lock.extend()
            r.zadd(keys.TURNS, {session: clock.now() + settings.claim_lease}, xx=True)
            batch = r.lrange(keys.session_inbox(session), 0, TURN_BATCH - 1)
            if not batch:
                # Leave the schedule first: an ingress that finds the flag still set
                # puts the session back on it.
                r.zrem(keys.TURNS, session)
                if scripts.run(
                    r,
                    "turn_finish",
                    [keys.session_inbox(session), keys.session_pending(session)],
                    [],
                ):
                    return processed
                r.zadd(keys.TURNS, {session: clock.now() + settings.claim_lease})
                continue
            processed += _run_batch(r, settings, sender, session, [json.loads(m) for m in batch])
    finally:
        lock.release()


def _run_batch(
    r: Redis, settings: Settings, sender: TaskSender, session: str, messages: list[dict[str, Any]]
) -> int:
    meta = r.hgetall(keys.session_meta(session))
    if not meta:
        # The session was deleted while its messages waited.
        r.delete(keys.session_inbox(session))
        return len(messages)
    bot_id, version = meta["botId"], meta["version"]
    state = SessionState.from_json(meta.get("state"))
    outbox = Outbox.for_session(session, meta)
    # A paused session belongs to a human agent: its messages are kept, the bot is silent.
    paused = meta.get("paused") == "1"
    try:
        engine: Engine | None = Engine(bots.definition_of(r, bot_id, version))
    except NotFound:
        log.warning(
            "bot %s is gone; %d message(s) of its session are dropped", bot_id, len(messages)
        )
        engine = None
    channels_seen: dict[str, dict[str, str] | None] = {}
    for message in messages:
        outbox.note(
            transcript.item("user", message["receivedAt"], transcript.user_message(message, bot_id))
        )
        if engine is None or paused:
            continue
        turn = engine.step(state, message, can_offload=False)
        state = turn.state
        channel = _channel(r, channels_seen, message["channelId"])
        for output in turn.outputs:
            if output.kind == "message":
                outbox.send(channel, output.body)
    deliveries.commit_turn(
        r,
        settings,
        sender,
        session,
        trim=len(messages),
        meta={
            "state": state.to_json(),
            "lastActivityAt": repr(clock.now()),
            **outbox.counter_fields(),
        },
        transcript_items=outbox.transcript,
        new=outbox.deliveries,
    )
    return len(messages)


def _channel(
    r: Redis, seen: dict[str, dict[str, str] | None], channel_id: str
) -> dict[str, str] | None:
    """The channel a message came in on, or None (logged) when it was removed since."""
    if channel_id not in seen:
        try:
            seen[channel_id] = channels.get_raw(r, channel_id)
        except NotFound:
            log.warning("channel %s is gone; the replies to its messages are not sent", channel_id)
            seen[channel_id] = None
    return seen[channel_id]
