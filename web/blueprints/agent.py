"""The agent route of docs/wire-contract.md §4: a human agent's messages into a conversation, and
hand-back."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from broker.bots import payload_secret
from broker.conversations import agent_actions, conversation_store
from broker.conversations.agent_forms import to_bot_messages
from broker.core.errors import ValidationFailed
from broker.core.validation import parse
from web.apidoc import documented
from web.auth import require_admin_or_bot_token
from web.request_body import json_object, query_args
from web.schemas import ActionDone, ConversationAction, VersionQuery
from web.services import services

bp = Blueprint("agent", __name__)


@bp.post("/v1/bots/<bot_id>/conversations/<conversation:session_id>/actions")
@documented(
    "Send an agent's messages to the user, and/or hand the conversation back to the bot",
    auth="admin_or_bot_token",
    body=ConversationAction,
    query=VersionQuery,
    answers={202: ActionDone},
    errors=[409],
    description=(
        "`sendMessages` items are BotMessages or Chatlayer conversation-action forms; they "
        "reach the user through the session's channel webhook, after what the bot already "
        "sent, and the offloading webhook as a `messages` event (actor `agent`). "
        "`resumeBot: true` gives the conversation back to the bot (the offloading webhook "
        "gets a `bot_resumed` event message); `goToDialogstate` then moves the dialogue "
        "to that state and sends its messages (`422` for a state the bot does not have)."
    ),
    tags=["conversations"],
)
def conversation_action(bot_id: str, session_id: str) -> tuple[Response, int]:
    require_admin_or_bot_token(bot_id)
    s = services()
    query = query_args(VersionQuery)
    conversation = conversation_store.find(
        s.redis, bot_id, query.version, session_id, query.channelId
    )
    body = parse(ConversationAction, json_object())
    if body.goToDialogstate is not None and not body.resumeBot:
        raise ValidationFailed("goToDialogstate needs resumeBot: true", field="resumeBot")
    if body.sendMessages is None and not body.resumeBot:
        raise ValidationFailed(
            "send sendMessages, or resumeBot: true to hand the conversation back",
            field="sendMessages",
        )
    messages: list[dict[str, Any]] = []
    if body.sendMessages:
        payloads = payload_secret.key_for(s.redis, conversation.key)
        for index, item in enumerate(body.sendMessages):
            messages += to_bot_messages(item, f"sendMessages[{index}]", payloads)
    done = agent_actions.act(
        s.redis,
        s.settings,
        s.sender,
        conversation,
        messages=messages,
        resume=bool(body.resumeBot),
        go_to=body.goToDialogstate,
    )
    return jsonify(done), 202
