"""Reading deliveries, dead letters and endpoints back through the management API."""

from __future__ import annotations

from typing import Any

from broker.core import clock
from tests.integration.stacks import Api


def _items(api: Api, path: str, query: dict[str, str]) -> list[dict[str, Any]]:
    answer = api.get(path, params=query)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def deliveries(api: Api, **query: str) -> list[dict[str, Any]]:
    return _items(api, "/v1/deliveries", {"limit": "500", **query})


def dead_letters(api: Api, **query: str) -> list[dict[str, Any]]:
    return _items(api, "/v1/dead-letters", query)


def _one(api: Api, path: str) -> dict[str, Any]:
    answer = api.get(path)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def delivery(api: Api, delivery_id: str) -> dict[str, Any]:
    return _one(api, f"/v1/deliveries/{delivery_id}")


def endpoint(api: Api, endpoint_id: str) -> dict[str, Any]:
    return _one(api, f"/v1/endpoints/{endpoint_id}")


def attempt_times(item: dict[str, Any]) -> list[float]:
    return [clock.parse_iso(a["at"]) for a in item["attempts"]]
