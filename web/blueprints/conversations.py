"""Conversations of a bot version: sessions, transcripts and session data (docs/wire-contract.md
§6)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from broker.conversations import conversation_store
from web.apidoc import documented
from web.auth import require_admin
from web.request_body import query_args
from web.schemas import (
    ConversationList,
    ConversationListQuery,
    SessionData,
    Transcript,
    VersionPageQuery,
    VersionQuery,
)
from web.services import services

bp = Blueprint("conversations", __name__)
bp.before_request(require_admin)


@bp.get("/v1/bots/<bot_id>/conversations")
@documented(
    "A bot version's sessions, the most recently active first",
    auth="admin",
    query=ConversationListQuery,
    answers={200: ConversationList},
    tags=["conversations"],
)
def list_conversations(bot_id: str) -> Response:
    query = query_args(ConversationListQuery)
    page = conversation_store.list_page(
        services().redis,
        bot_id,
        query.version,
        query.offset,
        query.limit,
        paused=query.paused,
        channel_id=query.channelId,
    )
    listing = query.listing(page.items, page.total)
    if page.scan_limited:
        listing["scanLimited"] = True
    return jsonify(listing)


@bp.get("/v1/bots/<bot_id>/conversations/<conversation:session_id>/messages")
@documented(
    "The session's transcript, oldest first: who said what (user, bot, agent)",
    auth="admin",
    query=VersionPageQuery,
    answers={200: Transcript},
    errors=[409],
    tags=["conversations"],
)
def transcript(bot_id: str, session_id: str) -> Response:
    query = query_args(VersionPageQuery)
    r = services().redis
    conversation = conversation_store.find(r, bot_id, query.version, session_id, query.channelId)
    items, total = conversation_store.transcript_page(r, conversation, query.offset, query.limit)
    return jsonify(query.listing(items, total))


@bp.get("/v1/bots/<bot_id>/conversations/<conversation:session_id>/session-data")
@documented(
    "The session's variables",
    auth="admin",
    query=VersionQuery,
    answers={200: SessionData},
    errors=[409],
    tags=["conversations"],
)
def get_session_data(bot_id: str, session_id: str) -> Response:
    r = services().redis
    query = query_args(VersionQuery)
    conversation = conversation_store.find(r, bot_id, query.version, session_id, query.channelId)
    return jsonify(conversation_store.variables(r, conversation))


@bp.delete("/v1/bots/<bot_id>/conversations/<conversation:session_id>/session-data")
@documented(
    "Forget the session's variables (where it is in the dialogue is kept)",
    auth="admin",
    query=VersionQuery,
    answers={204: None},
    errors=[409],
    tags=["conversations"],
)
def clear_session_data(bot_id: str, session_id: str) -> tuple[str, int]:
    s = services()
    query = query_args(VersionQuery)
    conversation = conversation_store.find(
        s.redis, bot_id, query.version, session_id, query.channelId
    )
    conversation_store.forget_variables(s.redis, s.settings, s.sender, conversation)
    return "", 204
