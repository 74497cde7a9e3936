"""Conversation actions (SPEC 4): an agent's messages to a user, and handing the session back.

Agent messages go out as the bot's do: deliveries on the session's channel webhook,
their `messageCounter` continuing the session's count, written under the session's
lock so they never interleave with a bot turn. In the transcript they are `bot`
items (the actor the offloading webhook knows) marked `"origin": "agent"`.
"""

from __future__ import annotations

from typing import Any

from broker import bots, channels, clock, conversations, deliveries
from broker.conversations import Session
from broker.engine import Engine, SessionState, render_message
from broker.errors import Conflict, NotFound, ValidationFailed
from broker.outbox import Outbox
from broker.redis_conn import Redis
from broker.sender import TaskSender
from broker.settings import Settings


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
    """Send `messages` (BotMessages) to the user; then, if asked, unpause the session and
    move the dialogue to `go_to`, sending that state's messages."""
    engine = _engine_for(r, session, go_to)
    with conversations.locked(r, settings, sender, session) as meta:
        channel_id = meta["channelId"]
        try:
            channel = channels.get_raw(r, channel_id)
        except NotFound:
            raise Conflict(
                f"the channel {channel_id!r} of session {session.session_id!r} was removed"
            ) from None
        state = SessionState.from_json(meta.get("state"))
        outbox = Outbox.for_session(session.key, meta)
        for message in messages:
            outbox.send(channel, render_message(message, state.variables), origin="agent")
        paused = conversations.is_paused(meta)
        if resume:
            paused = False
            if engine is not None and go_to is not None:
                turn = engine.go_to(state, go_to, can_offload=False)
                state = turn.state
                for output in turn.outputs:
                    if output.kind == "message":
                        outbox.send(channel, output.body)
        now = clock.now()
        new_meta: dict[str, Any] = {
            **outbox.counter_fields(),
            "lastActivityAt": repr(now),
            "paused": "1" if paused else "0",
            "state": state.to_json(),
        }
        deliveries.commit_turn(
            r,
            settings,
            sender,
            session.key,
            trim=0,
            meta=new_meta,
            transcript_items=outbox.transcript,
            new=outbox.deliveries,
        )
    conversations.touch(r, session, now)
    return {
        "botId": session.bot_id,
        "sessionId": session.session_id,
        "version": session.version,
        "paused": paused,
        "deliveryIds": [d.id for d in outbox.deliveries],
    }


def _engine_for(r: Redis, session: Session, go_to: str | None) -> Engine | None:
    """The engine of the session's bot version, when a hand-back names a state; checks it."""
    if go_to is None:
        return None
    engine = Engine(bots.definition_of(r, session.bot_id, session.version))
    if go_to not in engine.states:
        raise ValidationFailed(
            f"the {session.version} version of the bot has no state {go_to!r}",
            field="goToDialogstate",
        )
    return engine
