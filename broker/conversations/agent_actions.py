"""Conversation actions (SPEC 4): an agent's messages to a user, and handing the session back.

Agent messages go out as the bot's do: deliveries on the session's channel webhook,
their `messageCounter` continuing the session's count, written under the session's
lock so they never interleave with a bot turn. In the transcript, and in the `messages`
events the offloading webhook gets, they are items of actor `agent`. A hand-back tells
the offloading webhook so with a `bot_resumed` event message.
"""

from __future__ import annotations

from typing import Any

from broker.bots import bot_store
from broker.bots.engine import Engine, SessionState
from broker.bots.rendering import render_message
from broker.channels import channel_store
from broker.conversations import conversation_store, transcript
from broker.conversations.conversation_store import Session
from broker.conversations.handover import Handover, resumed_notice
from broker.conversations.outbox import Outbox
from broker.core import clock
from broker.core.connection import Redis
from broker.core.errors import Conflict, NotFound, ValidationFailed
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery import fanout, offloading


def act(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    session: Session,
    *,
    messages: list[dict[str, Any]],
    resume: bool = False,
    go_to: str | None = None,
) -> dict[str, Any]:
    """Send `messages` (BotMessages) to the user; then, if asked, give the conversation back
    to the bot and move the dialogue to `go_to`, sending that state's messages."""
    engine = _engine_for(r, session, go_to)
    with conversation_store.locked(r, settings, sender, session) as meta:
        channel_id = meta["channelId"]
        try:
            channel = channel_store.get_raw(r, channel_id)
        except NotFound:
            raise Conflict(
                f"the channel {channel_id!r} of session {session.session_id!r} was removed"
            ) from None
        now = clock.now()
        state = SessionState.from_json(meta.get("state"))
        outbox = Outbox.for_session(session.key, meta, offloading.endpoint_of(r, session.bot_id))
        handover = Handover.of(settings, session.key, meta)
        for message in messages:
            outbox.send(channel, render_message(message, state.variables), actor="agent")
        if messages:
            handover.agent_acted(now)
        if resume:
            if handover.paused:
                outbox.note(transcript.item("bot", now, resumed_notice("agent")))
            handover.resume()
            if engine is not None and go_to is not None:
                turn = engine.go_to(state, go_to, can_offload=False)
                state = turn.state
                for output in turn.outputs:
                    if output.kind == "message":
                        outbox.send(channel, output.body)
        outbox.flush()
        handover.changes.write_adds(r)
        fanout.commit_turn(
            r,
            settings,
            sender,
            session.key,
            trim=0,
            meta={
                **outbox.counter_fields(),
                **handover.fields(),
                "lastActivityAt": repr(now),
                "state": state.to_json(),
            },
            transcript_items=outbox.transcript,
            new=outbox.deliveries,
        )
        handover.changes.write_removes(r)
    conversation_store.touch(r, session, now)
    return {
        "botId": session.bot_id,
        "sessionId": session.session_id,
        "version": session.version,
        "paused": handover.paused,
        "deliveryIds": outbox.channel_delivery_ids,
    }


def _engine_for(r: Redis, session: Session, go_to: str | None) -> Engine | None:
    """The engine of the session's bot version, when a hand-back names a state; checks it."""
    if go_to is None:
        return None
    engine = Engine(bot_store.definition_of(r, session.bot_id, session.version))
    if go_to not in engine.states:
        raise ValidationFailed(
            f"the {session.version} version of the bot has no state {go_to!r}",
            field="goToDialogstate",
        )
    return engine
