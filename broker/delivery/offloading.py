"""A bot's offloading (human handover) integration: its API URL and verify token
(docs/wire-contract.md §4).

Saving one runs the health check first. The API URL is kept as an endpoint of kind
"offloading" (id `off_<botId>`, its own signing secret), so the deliveries sent to it
later have the same health, retries and signatures as a channel's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from broker import __version__
from broker.bots import bot_store
from broker.core import clock, generation, ids, keys
from broker.core.connection import HashFields, Redis
from broker.core.errors import NotFound, ValidationFailed
from broker.core.settings import Settings
from broker.delivery import endpoint_store
from broker.delivery.endpoint import OVERRIDES, Endpoint, with_challenge
from broker.delivery.http_client import Answer, HttpClient, RequestFailed
from broker.delivery.netsafety import check_url

USER_AGENT = f"Switchboard-Webhooks/{__version__}"
#: How much of a failed health check's answer the error message quotes.
_QUOTED = 300


def endpoint_id(bot_id: str) -> str:
    return f"off_{bot_id}"


def health_check(
    settings: Settings, api_url: str, verify_token: str, timeouts: tuple[float, float]
) -> None:
    """GET the API URL with the challenge; anything but 200 with a JSON object whose `status`
    is "ok" (other fields may come with it) raises
    ValidationFailed (field `apiUrl`) quoting the endpoint's answer. Like every outbound
    request, it is done within the endpoint's `timeouts` (connect, total), reading at most
    a capped answer."""
    connect_timeout, total_timeout = timeouts

    async def check() -> Answer:
        client = HttpClient(settings.outbound_allowlist, USER_AGENT)
        try:
            return await client.request(
                "GET",
                with_challenge(api_url, verify_token),
                b"",
                {"Accept": "application/json"},
                connect_timeout=connect_timeout,
                total_timeout=total_timeout,
            )
        finally:
            await client.close()

    try:
        answer = asyncio.run(check())
    except RequestFailed as exc:
        raise ValidationFailed(
            f"the health check of {api_url} failed: {exc}", field="apiUrl"
        ) from exc
    try:
        found = json.loads(answer.body)
        ok = answer.status == 200 and isinstance(found, dict) and found.get("status") == "ok"
    except ValueError:
        ok = False
    if not ok:
        text = answer.body[:_QUOTED].decode("utf-8", "replace")
        raise ValidationFailed(
            f'the health check of {api_url} expected 200 {{"status": "ok"}} and got '
            f"{answer.status} {text!r}",
            field="apiUrl",
        )


@dataclass(frozen=True)
class Offloading:
    """A bot's offloading integration (hash `sb:{b:<bot>}:offloading`); its API URL and verify
    token are its endpoint's."""

    bot_id: str
    endpoint_id: str
    created_at: float
    updated_at: float

    def to_redis(self) -> HashFields:
        return {
            "botId": self.bot_id,
            "endpointId": self.endpoint_id,
            "createdAt": repr(self.created_at),
            "updatedAt": repr(self.updated_at),
        }

    @classmethod
    def from_redis(cls, raw: Mapping[str, str]) -> Offloading:
        return cls(
            raw["botId"], raw["endpointId"], float(raw["createdAt"]), float(raw["updatedAt"])
        )

    @staticmethod
    def endpoint_field() -> str:
        """The one field a bot turn reads, to know where `messages` and `offload` events go."""
        return "endpointId"


def configure(
    r: Redis,
    settings: Settings,
    bot_id: str,
    api_url: str,
    verify_token: str,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Save (or replace) the bot's offloading integration once its health check passes.
    `overrides` are the endpoint's own retry schedule and timeouts (`endpoint.OVERRIDES`);
    those it leaves out are the defaults."""
    if not bot_store.exists(r, bot_id):
        raise NotFound(f"no bot {bot_id!r}")
    check_url(api_url, settings.outbound_allowlist, field="apiUrl")
    now = clock.now()
    fresh = Endpoint(
        id=endpoint_id(bot_id),
        kind="offloading",
        bot_id=bot_id,
        url=api_url,
        secret=ids.new_signing_secret(),
        created_at=now,
        verify_token=verify_token,
    ).with_overrides(settings, overrides or {})
    health_check(settings, api_url, verify_token, fresh.timeouts(settings))
    try:
        # Only the fields it sets: a rotation of its secret meanwhile stays.
        endpoint = endpoint_store.change(
            r,
            endpoint_id(bot_id),
            lambda read: replace(
                read,
                url=api_url,
                verify_token=verify_token,
                **{field: getattr(fresh, field) for field in OVERRIDES.values()},
            ),
        )
    except NotFound:
        endpoint = fresh
        endpoint_store.save(r, endpoint)
    existing = _load(r, bot_id)
    created = existing.created_at if existing else now
    integration = Offloading(bot_id, endpoint.id, created, now)
    r.hset(keys.bot_offloading(bot_id), mapping=integration.to_redis())
    generation.move_on(r)
    return _view(settings, integration, endpoint)


def endpoint_of(r: Redis, bot_id: str) -> str | None:
    """The id of the bot's offloading endpoint, or None when the bot hands over to no one."""
    return r.hget(*endpoint_location(bot_id))


def endpoint_location(bot_id: str) -> tuple[str, str]:
    """The hash and field of the id of the bot's offloading endpoint (`endpoint_of`)."""
    return keys.bot_offloading(bot_id), Offloading.endpoint_field()


def _load(r: Redis, bot_id: str) -> Offloading | None:
    raw = r.hgetall(keys.bot_offloading(bot_id))
    return Offloading.from_redis(raw) if raw else None


def view(r: Redis, settings: Settings, bot_id: str) -> dict[str, Any]:
    integration = _existing(r, bot_id)
    return _view(settings, integration, endpoint_store.load(r, integration.endpoint_id))


def _existing(r: Redis, bot_id: str) -> Offloading:
    """The bot's integration; NotFound saying which is missing, the bot or its integration."""
    integration = _load(r, bot_id)
    if integration is None:
        if not bot_store.exists(r, bot_id):
            raise NotFound(f"no bot {bot_id!r}")
        raise NotFound(f"bot {bot_id!r} has no offloading integration")
    return integration


def _view(settings: Settings, integration: Offloading, endpoint: Endpoint) -> dict[str, Any]:
    """The integration as the management API shows it."""
    return {
        "botId": integration.bot_id,
        "apiUrl": endpoint.url,
        "verifyToken": endpoint.verify_token,
        "endpointId": endpoint.id,
        "signingSecret": endpoint.secret,
        **endpoint.overrides_view(settings),
        "createdAt": clock.iso(integration.created_at),
        "updatedAt": clock.iso(integration.updated_at),
    }


def rotate_secret(r: Redis, settings: Settings, bot_id: str) -> dict[str, Any]:
    """A new signing secret for the integration's endpoint; the old one keeps signing beside
    it for SECRET_ROTATION_OVERLAP."""
    integration = _existing(r, bot_id)
    # What this rotation wrote: read again, it could be another's made meanwhile.
    return _view(settings, integration, endpoint_store.rotate_secret(r, integration.endpoint_id))


def remove(r: Redis, bot_id: str) -> list[str]:
    """Remove the integration with its endpoint; returns the offloads whose answer was still
    awaited (`endpoint_store.delete`)."""
    _existing(r, bot_id)
    r.delete(keys.bot_offloading(bot_id))
    generation.move_on(r)
    return endpoint_store.delete(r, endpoint_id(bot_id))


def remove_if_any(r: Redis, bot_id: str) -> None:
    """Used when the bot itself goes."""
    r.delete(keys.bot_offloading(bot_id))
    generation.move_on(r)
    endpoint_store.delete(r, endpoint_id(bot_id))
