"""The delivery loop's endpoints follow the changes announced on `sb:endpoint-changes`."""

from __future__ import annotations

import asyncio

import pytest

from broker.core.autopipe import AutoPipeline
from broker.core.connection import connect_async
from broker.delivery import endpoint_cache, health
from broker.delivery.endpoint_cache import EndpointCache
from tests.web_app import WebApp


def test_a_disabled_endpoint_is_seen_at_once(web: WebApp, monkeypatch: pytest.MonkeyPatch) -> None:
    # Read again only when a change is announced.
    monkeypatch.setattr(endpoint_cache, "FRESH_FOR", 3600.0)
    endpoint_id = web.channel()["id"]

    async def state_after_disabling() -> str:
        r = connect_async(web.settings.redis_url)
        endpoints = EndpointCache(AutoPipeline(r))
        following = asyncio.create_task(endpoints.follow_changes(r))
        try:
            await asyncio.sleep(0.2)  # subscribed by then, or forgets what it read when it is
            assert (await endpoints.get(endpoint_id))[1] == "healthy"
            health.disable(web.redis, endpoint_id)
            for _ in range(100):
                _, state = await endpoints.get(endpoint_id)
                if state != "healthy" or following.done():
                    break
                await asyncio.sleep(0.05)
            return state
        finally:
            following.cancel()
            await r.aclose()  # type: ignore[attr-defined]  # newer than the stubs

    assert asyncio.run(state_after_disabling()) == "disabled"
