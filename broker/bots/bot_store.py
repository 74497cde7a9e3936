"""Bots: a name and a dialogue definition, in a DRAFT and a LIVE version."""

from __future__ import annotations

import json
from typing import Any, Literal

from broker.bots import definition
from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import NotFound, ValidationFailed

Version = Literal["DRAFT", "LIVE"]
VERSIONS: tuple[Version, ...] = ("DRAFT", "LIVE")


def check_version(value: str | None, *, default: Version = "LIVE") -> Version:
    if value is None or value == "":
        return default
    if value not in VERSIONS:
        raise ValidationFailed("version is DRAFT or LIVE", field="version")
    return value


def create(r: Redis, name: str, definition_: Any) -> dict[str, Any]:
    checked = definition.validate(definition_)
    bot_id = ids.new_id("bot")
    now = clock.now()
    text = json.dumps(checked)
    pipe = r.pipeline()
    pipe.hset(
        keys.bot(bot_id),
        mapping={
            "id": bot_id,
            "name": name,
            "DRAFT": text,
            "LIVE": text,
            "createdAt": repr(now),
            "updatedAt": repr(now),
            "publishedAt": repr(now),
        },
    )
    pipe.zadd(keys.BOTS, {bot_id: int(now * 1000)})
    pipe.execute()
    return get(r, bot_id)


def _raw(r: Redis, bot_id: str) -> dict[str, str]:
    raw: dict[str, str] = r.hgetall(keys.bot(bot_id))
    if not raw:
        raise NotFound(f"no bot {bot_id!r}")
    return raw


def view(raw: dict[str, str]) -> dict[str, Any]:
    return {
        "id": raw["id"],
        "name": raw["name"],
        "createdAt": clock.iso(float(raw["createdAt"])),
        "updatedAt": clock.iso(float(raw["updatedAt"])),
        "publishedAt": clock.iso(float(raw["publishedAt"])),
        "draft": json.loads(raw["DRAFT"]),
        "live": json.loads(raw["LIVE"]),
    }


def get(r: Redis, bot_id: str) -> dict[str, Any]:
    return view(_raw(r, bot_id))


def definition_of(r: Redis, bot_id: str, version: Version) -> dict[str, Any]:
    text = r.hget(keys.bot(bot_id), version)
    if text is None:
        raise NotFound(f"no bot {bot_id!r}")
    return json.loads(text)  # type: ignore[no-any-return]


def exists(r: Redis, bot_id: str) -> bool:
    return bool(r.exists(keys.bot(bot_id)))


def list_page(r: Redis, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    pipe = r.pipeline()
    pipe.zrevrange(keys.BOTS, offset, offset + limit - 1)
    pipe.zcard(keys.BOTS)
    bot_ids, total = pipe.execute()
    pipe = r.pipeline()
    for bot_id in bot_ids:
        pipe.hgetall(keys.bot(bot_id))
    return [view(raw) for raw in pipe.execute() if raw], total


def put_draft(r: Redis, bot_id: str, definition_: Any) -> dict[str, Any]:
    _raw(r, bot_id)
    checked = definition.validate(definition_)
    r.hset(keys.bot(bot_id), mapping={"DRAFT": json.dumps(checked), "updatedAt": repr(clock.now())})
    return get(r, bot_id)


def publish(r: Redis, bot_id: str) -> dict[str, Any]:
    raw = _raw(r, bot_id)
    r.hset(keys.bot(bot_id), mapping={"LIVE": raw["DRAFT"], "publishedAt": repr(clock.now())})
    return get(r, bot_id)


def delete(r: Redis, bot_id: str) -> list[str]:
    """Delete a bot; returns the ids of its channels, which the caller removes."""
    _raw(r, bot_id)
    channel_ids = sorted(r.smembers(keys.bot_channels(bot_id)))
    pipe = r.pipeline()
    pipe.delete(keys.bot(bot_id))
    pipe.zrem(keys.BOTS, bot_id)
    pipe.execute()
    return channel_ids
