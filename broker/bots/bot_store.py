"""The bot store: bots and their DRAFT and LIVE definitions in Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from broker.bots import definition
from broker.bots.bot import Bot, Version
from broker.bots.references import UrlCheck
from broker.core import clock, generation, ids, keys, record_change
from broker.core.connection import Redis
from broker.core.errors import NotFound


def create(
    r: Redis, name: str, definition_: Any, *, check_url: UrlCheck | None = None
) -> dict[str, Any]:
    """A new bot; `check_url` judges the API URLs of its definition (outbound safety)."""
    checked = definition.validate(definition_, check_url=check_url)
    now = clock.now()
    bot = Bot(ids.new_id("bot"), name, checked, checked, now, now, now)
    pipe = r.pipeline(transaction=False)
    pipe.hset(keys.bot(bot.id), mapping=bot.to_redis())
    pipe.zadd(keys.BOTS, {bot.id: clock.ms(now)})
    generation.move_on(pipe)
    pipe.execute()
    return bot.view()


def load(r: Redis, bot_id: str) -> Bot:
    raw = r.hgetall(keys.bot(bot_id))
    if not raw:
        raise NotFound(f"no bot {bot_id!r}")
    return Bot.from_redis(raw)


def get(r: Redis, bot_id: str) -> dict[str, Any]:
    return load(r, bot_id).view()


def definition_location(bot_id: str, version: Version) -> tuple[str, str]:
    """The hash and field of one version's definition's JSON text, which a bot turn reads."""
    return keys.bot(bot_id), Bot.definition_field(version)


def exists(r: Redis, bot_id: str) -> bool:
    return bool(r.exists(keys.bot(bot_id)))


def list_page(r: Redis, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    pipe = r.pipeline(transaction=False)
    pipe.zrevrange(keys.BOTS, offset, offset + limit - 1)
    pipe.zcard(keys.BOTS)
    bot_ids, total = pipe.execute()
    pipe = r.pipeline(transaction=False)
    for bot_id in bot_ids:
        pipe.hgetall(keys.bot(bot_id))
    return [Bot.from_redis(raw).view() for raw in pipe.execute() if raw], total


def put_draft(
    r: Redis, bot_id: str, definition_: Any, *, check_url: UrlCheck | None = None
) -> dict[str, Any]:
    load(r, bot_id)  # 404 before the definition is judged
    checked = json.dumps(definition.validate(definition_, check_url=check_url))
    now = repr(clock.now())
    # Only the draft's fields are written: a publish or a delete meanwhile stands.
    return _changed(r, bot_id, lambda read: {"DRAFT": checked, "updatedAt": now})


def publish(r: Redis, bot_id: str) -> dict[str, Any]:
    now = repr(clock.now())
    # The draft read is compared too: a draft put meanwhile is the one published.
    return _changed(
        r,
        bot_id,
        lambda read: {"DRAFT": read["DRAFT"], "LIVE": read["DRAFT"], "publishedAt": now},
    )


def _changed(
    r: Redis, bot_id: str, change: Callable[[dict[str, str]], dict[str, str]]
) -> dict[str, Any]:
    """Change the bot's record with `change` (`record_change`: no concurrent change is lost,
    and a bot deleted meanwhile stays deleted); the bot as changed."""
    written = record_change.change(r, keys.bot(bot_id), change)
    if written is None:
        raise NotFound(f"no bot {bot_id!r}")
    generation.move_on(r)
    return Bot.from_redis(written).view()


def delete(r: Redis, bot_id: str) -> None:
    """Delete the bot's record and its place in the listing; what hangs off it is the
    caller's (`broker.bot_removal`)."""
    pipe = r.pipeline(transaction=False)
    pipe.delete(keys.bot(bot_id))  # one DEL a key, as a Redis Cluster's pipeline takes them
    pipe.delete(keys.bot_channels(bot_id))
    pipe.zrem(keys.BOTS, bot_id)
    generation.move_on(pipe)
    pipe.execute()
