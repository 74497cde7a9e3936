"""A bot's offloading (human handover) integration: its API URL and verify token (SPEC 4).

Saving one runs the health check first. The API URL is kept as an endpoint of kind
"offloading" (id `off_<botId>`, its own signing secret), so the deliveries sent to it
later have the same health, retries and signatures as a channel's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import requests

from broker import __version__
from broker.bots import bot_store
from broker.core import clock, ids, keys
from broker.core.connection import Redis
from broker.core.errors import NotFound, ValidationFailed
from broker.core.settings import Settings
from broker.delivery import endpoint_store
from broker.delivery.endpoint import Endpoint, with_challenge
from broker.delivery.http_client import failure_text, safe_http_session
from broker.delivery.netsafety import check_url

USER_AGENT = f"Switchboard-Webhooks/{__version__}"
#: How much of a failed health check's answer the error message quotes.
_QUOTED = 300


def endpoint_id(bot_id: str) -> str:
    return f"off_{bot_id}"


def health_check(settings: Settings, api_url: str, verify_token: str) -> None:
    """GET the API URL with the challenge; anything but 200 `{"status": "ok"}` raises
    ValidationFailed (field `apiUrl`) quoting the endpoint's answer."""
    http_session = safe_http_session(settings.outbound_allowlist, pool_size=1)
    url = with_challenge(api_url, verify_token)
    try:
        with http_session:
            response = http_session.get(
                url,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                timeout=(settings.connect_timeout, settings.total_timeout),
                allow_redirects=False,
            )
            text = response.text[:_QUOTED]
    except requests.exceptions.RequestException as exc:
        raise ValidationFailed(
            f"the health check of {api_url} failed: {_failure(settings, exc)}", field="apiUrl"
        ) from exc
    try:
        ok = response.status_code == 200 and response.json() == {"status": "ok"}
    except ValueError:
        ok = False
    if not ok:
        raise ValidationFailed(
            f'the health check of {api_url} expected 200 {{"status": "ok"}} and got '
            f"{response.status_code} {text!r}",
            field="apiUrl",
        )


def _failure(settings: Settings, exc: requests.exceptions.RequestException) -> str:
    return failure_text(
        exc, connect_timeout=settings.connect_timeout, total_timeout=settings.total_timeout
    )


def configure(
    r: Redis,
    settings: Settings,
    bot_id: str,
    api_url: str,
    verify_token: str,
) -> dict[str, Any]:
    """Save (or replace) the bot's offloading integration once its health check passes."""
    if not bot_store.exists(r, bot_id):
        raise NotFound(f"no bot {bot_id!r}")
    check_url(api_url, settings.outbound_allowlist, field="apiUrl")
    health_check(settings, api_url, verify_token)
    now = clock.now()
    try:
        endpoint = replace(
            endpoint_store.load(r, endpoint_id(bot_id)), url=api_url, verify_token=verify_token
        )
    except NotFound:
        endpoint = Endpoint(
            id=endpoint_id(bot_id),
            kind="offloading",
            bot_id=bot_id,
            url=api_url,
            secret=ids.new_signing_secret(),
            created_at=now,
            verify_token=verify_token,
        )
    endpoint_store.save(r, endpoint)
    key = keys.bot_offloading(bot_id)
    r.hsetnx(key, "createdAt", repr(now))
    r.hset(
        key,
        mapping={
            "apiUrl": api_url,
            "verifyToken": verify_token,
            "endpointId": endpoint.id,
            "updatedAt": repr(now),
        },
    )
    return view(r, bot_id)


def endpoint_of(r: Redis, bot_id: str) -> str | None:
    """The id of the bot's offloading endpoint, or None when the bot hands over to no one."""
    found: str | None = r.hget(keys.bot_offloading(bot_id), "endpointId")
    return found


def view(r: Redis, bot_id: str) -> dict[str, Any]:
    raw: dict[str, str] = r.hgetall(keys.bot_offloading(bot_id))
    if not raw:
        if not bot_store.exists(r, bot_id):
            raise NotFound(f"no bot {bot_id!r}")
        raise NotFound(f"bot {bot_id!r} has no offloading integration")
    endpoint = endpoint_store.load(r, raw["endpointId"])
    return {
        "botId": bot_id,
        "apiUrl": raw["apiUrl"],
        "verifyToken": raw["verifyToken"],
        "endpointId": endpoint.id,
        "signingSecret": endpoint.secret,
        "createdAt": clock.iso(float(raw["createdAt"])),
        "updatedAt": clock.iso(float(raw["updatedAt"])),
    }


def remove(r: Redis, bot_id: str) -> None:
    view(r, bot_id)
    r.delete(keys.bot_offloading(bot_id))
    endpoint_store.delete(r, endpoint_id(bot_id))


def remove_if_any(r: Redis, bot_id: str) -> None:
    """Used when the bot itself goes."""
    r.delete(keys.bot_offloading(bot_id))
    endpoint_store.delete(r, endpoint_id(bot_id))
