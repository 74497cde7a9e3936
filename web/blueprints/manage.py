"""Management API for bots and their Webhook channels (docs/wire-contract.md §6)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from broker.bot_removal import remove_bot, remove_channel
from broker.bots import bot_store
from broker.bots.references import UrlCheck
from broker.channels import channel_store
from broker.core.errors import NotFound, UnsafeURL
from broker.core.settings import Settings
from broker.core.validation import parse
from broker.delivery import netsafety
from web.answers import Bot, BotList, Channel, ChannelList, CreatedChannel
from web.apidoc import documented
from web.auth import require_admin
from web.queries import Pagination
from web.request_body import json_object, query_args
from web.schemas import CreateBot, CreateChannel, PatchChannel, PutDraft
from web.services import services

bp = Blueprint("manage", __name__)
bp.before_request(require_admin)


@bp.post("/v1/bots")
@documented(
    "Create a bot; the definition becomes its DRAFT and LIVE version",
    auth="admin",
    body=CreateBot,
    answers={201: Bot},
    tags=["bots"],
)
def create_bot() -> tuple[Response, int]:
    body = parse(CreateBot, json_object())
    s = services()
    created = bot_store.create(
        s.redis, body.name, body.definition, check_url=_outbound_safety(s.settings)
    )
    return jsonify(created), 201


def _outbound_safety(settings: Settings) -> UrlCheck:
    """Judges the API URLs of a definition as outbound safety does an endpoint's."""

    def check(url: str) -> str | None:
        try:
            netsafety.check_url(url, settings.outbound_allowlist)
        except UnsafeURL as exc:
            return exc.message
        return None

    return check


@bp.get("/v1/bots")
@documented(
    "List bots, newest first", auth="admin", query=Pagination, answers={200: BotList}, tags=["bots"]
)
def list_bots() -> Response:
    query = query_args(Pagination)
    items, total = bot_store.list_page(services().redis, query.offset, query.limit)
    return jsonify(query.listing(items, total))


@bp.get("/v1/bots/<bot_id>")
@documented("Read a bot", auth="admin", answers={200: Bot}, tags=["bots"])
def get_bot(bot_id: str) -> Response:
    return jsonify(bot_store.get(services().redis, bot_id))


@bp.delete("/v1/bots/<bot_id>")
@documented(
    "Delete a bot with its channels, offloading integration and API tokens",
    auth="admin",
    answers={204: None},
    tags=["bots"],
)
def delete_bot(bot_id: str) -> tuple[str, int]:
    remove_bot(services().redis, bot_id)
    return "", 204


@bp.put("/v1/bots/<bot_id>/draft")
@documented(
    "Replace the DRAFT definition; 422 names every fault with its path",
    auth="admin",
    body=PutDraft,
    answers={200: Bot},
    tags=["bots"],
)
def put_draft(bot_id: str) -> Response:
    body = parse(PutDraft, json_object())
    s = services()
    return jsonify(
        bot_store.put_draft(
            s.redis, bot_id, body.definition, check_url=_outbound_safety(s.settings)
        )
    )


@bp.post("/v1/bots/<bot_id>/publish")
@documented("DRAFT becomes LIVE", auth="admin", answers={200: Bot}, tags=["bots"])
def publish(bot_id: str) -> Response:
    return jsonify(bot_store.publish(services().redis, bot_id))


@bp.post("/v1/bots/<bot_id>/channels/webhook")
@documented(
    "Add a Webhook channel (a missing verify token is generated)",
    auth="admin",
    body=CreateChannel,
    answers={201: CreatedChannel},
    errors=[409],
    tags=["channels"],
)
def create_channel(bot_id: str) -> tuple[Response, int]:
    s = services()
    bot_store.get(s.redis, bot_id)
    body = parse(CreateChannel, json_object())
    created = channel_store.create(
        s.redis,
        s.settings,
        bot_id,
        body.webhookUrl,
        verify_token=body.verifyToken,
        version=body.version,
    )
    return jsonify(created), 201


@bp.get("/v1/bots/<bot_id>/channels/webhook")
@documented(
    "List a bot's Webhook channels, oldest first",
    auth="admin",
    query=Pagination,
    answers={200: ChannelList},
    tags=["channels"],
)
def list_channels(bot_id: str) -> Response:
    s = services()
    bot_store.get(s.redis, bot_id)
    query = query_args(Pagination)
    items, total = channel_store.list_page(s.redis, s.settings, bot_id, query.offset, query.limit)
    return jsonify(query.listing(items, total))


def _channel_of(bot_id: str, channel_id: str) -> None:
    """404 unless the channel belongs to the bot."""
    if channel_store.get(services().redis, channel_id).bot_id != bot_id:
        raise NotFound(f"bot {bot_id!r} has no channel {channel_id!r}")


@bp.get("/v1/bots/<bot_id>/channels/webhook/<channel_id>")
@documented("Read a Webhook channel", auth="admin", answers={200: Channel}, tags=["channels"])
def get_channel(bot_id: str, channel_id: str) -> Response:
    _channel_of(bot_id, channel_id)
    s = services()
    return jsonify(channel_store.view(s.redis, s.settings, channel_id))


@bp.patch("/v1/bots/<bot_id>/channels/webhook/<channel_id>")
@documented(
    "Change a channel's URL, verify token, version, rate limit, retry schedule or timeouts",
    auth="admin",
    body=PatchChannel,
    answers={200: Channel},
    errors=[409],
    tags=["channels"],
)
def patch_channel(bot_id: str, channel_id: str) -> Response:
    _channel_of(bot_id, channel_id)
    body = parse(PatchChannel, json_object())
    s = services()
    return jsonify(
        channel_store.update(s.redis, s.settings, channel_id, body.model_dump(exclude_none=True))
    )


@bp.delete("/v1/bots/<bot_id>/channels/webhook/<channel_id>")
@documented("Remove a Webhook channel", auth="admin", answers={204: None}, tags=["channels"])
def delete_channel(bot_id: str, channel_id: str) -> tuple[str, int]:
    remove_channel(services().redis, bot_id, channel_id)
    return "", 204


@bp.post("/v1/bots/<bot_id>/channels/webhook/<channel_id>/rotate-secret")
@documented(
    "New signing secret; the old one still signs for 24 h",
    auth="admin",
    answers={200: Channel},
    tags=["channels"],
)
def rotate_secret(bot_id: str, channel_id: str) -> Response:
    _channel_of(bot_id, channel_id)
    s = services()
    return jsonify(channel_store.rotate_secret(s.redis, s.settings, channel_id))
