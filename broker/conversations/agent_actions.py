"""Conversation actions (docs/wire-contract.md §4): an agent's messages to a user, and handing
the conversation back.

Agent messages go out as the bot's do: deliveries on the conversation's channel webhook,
their `messageCounter` continuing the conversation's count, written under the conversation's
lock so they never interleave with a bot turn. In the transcript, and in the `messages`
events the offloading webhook gets, they are items of actor `agent`. A hand-back tells
the offloading webhook so with a `bot_resumed` event message.
"""

from __future__ import annotations

from typing import Any

from broker.bots.engine import RUN_FAULTS, Engine, Memory, Turn, check_variables
from broker.bots.program import Offload
from broker.channels import channel_store
from broker.conversations import conversation_store, transcript
from broker.conversations.conversation import Conversation
from broker.conversations.handover import Handover, resumed_notice
from broker.conversations.loading import Loader
from broker.conversations.outbox import Outbox
from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import Conflict, NotFound, ValidationFailed
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery import fanout


def act(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    conversation: Conversation,
    *,
    messages: list[dict[str, Any]],
    resume: bool = False,
    go_to: str | None = None,
) -> dict[str, Any]:
    """Send `messages` (BotMessages) to the user; then, if asked, give the conversation back
    to the bot and move the dialogue to `go_to`, sending that state's messages."""
    loader = Loader(r)
    engine = _engine_for(loader, conversation, go_to)
    with conversation_store.locked(r, settings, sender, conversation) as (meta, lock):
        try:
            channel = channel_store.get(r, meta.channel_id)
        except NotFound:
            raise Conflict(
                f"the channel {meta.channel_id!r} of session {conversation.conversation_id!r} "
                "was removed"
            ) from None
        now = clock.now()
        outbox = Outbox.for_conversation(meta, loader.offloading_endpoint(conversation.bot_id))
        # Each request is an action of its own, never run again: its deliveries' ids are
        # its own too, even after a failover lost an earlier action from the same state.
        outbox.cause = ids.random_hex(8)
        handover = Handover(settings, conversation, meta.handover)
        for message in messages:
            # As the agent wrote it: `{{...}}` is no placeholder here, and what the route
            # checked is what goes out.
            outbox.send(channel, message, actor="agent")
        if messages:
            handover.agent_acted(now)
        waiting = r.llen(keys.conversation_inbox(conversation.key)) if resume else 0
        if resume:
            if meta.handover.paused:
                outbox.note(transcript.item("bot", now, resumed_notice("agent")))
                # What came while the agent had it, and waits still, is the agent's.
                meta.handover.agent_messages = waiting
            handover.resume()
            if engine is not None and go_to is not None:
                turn = _run_from(engine, meta.memory, go_to, settings)
                meta.memory = turn.memory
                outbox.send_outputs(channel, turn.outputs)
        commit = outbox.close(meta, now)
        handover.changes.write_adds(r)
        fanout.commit_turn(r, settings, sender, commit, lock.token)
        handover.changes.write_removes(r)
        if waiting:
            # Those that waited for an offload's answer, which no signal brings now, and the
            # agent's: `locked` wakes their turn on the way out.
            conversation_store.make_turns_pending(r, settings, [conversation.key])
    conversation_store.touch(r, conversation, now)
    return {
        "botId": conversation.bot_id,
        "sessionId": conversation.conversation_id,
        "version": conversation.version,
        "paused": meta.handover.paused,
        "deliveryIds": outbox.channel_delivery_ids,
    }


def _engine_for(loader: Loader, conversation: Conversation, go_to: str | None) -> Engine | None:
    """The engine of the conversation's bot version, when a hand-back names a state; checks it."""
    if go_to is None:
        return None
    engine = loader.engine(conversation)
    if engine is None:
        raise NotFound(f"no bot {conversation.bot_id!r}")
    if go_to not in engine.states:
        raise ValidationFailed(
            f"the {conversation.version} version of the bot has no state {go_to!r}",
            field="goToDialogstate",
        )
    if any(isinstance(step, Offload) for step in engine.states[go_to].steps):
        raise ValidationFailed(
            f"the state {go_to!r} hands the conversation to an agent: a hand-back gives it "
            "to the bot, so name a state of the bot's own",
            field="goToDialogstate",
        )
    return engine


def _run_from(engine: Engine, memory: Memory, go_to: str, settings: Settings) -> Turn:
    """The dialogue moved to `go_to`; Conflict, with nothing sent, when running it fails
    (`RUN_FAULTS`: it fills in too much, a value or the variables together past
    SWITCHBOARD_CONVERSATION_VARIABLES_BYTES; a message that cannot be sent; a loop of
    states)."""
    try:
        turn = engine.go_to(memory, go_to, can_offload=False)
        check_variables(memory, turn.memory, settings.conversation_variables_bytes)
    except RUN_FAULTS as exc:
        raise Conflict(f"the state {go_to!r} cannot be run: {exc}") from None
    return turn
