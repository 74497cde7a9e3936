"""Query strings of the API. The same models parse requests and describe them in /openapi.json."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Pagination(BaseModel):
    model_config = ConfigDict(extra="ignore")

    page: int = Field(default=1, ge=1, le=1_000_000, description="The page, from 1.")
    limit: int = Field(default=50, ge=1, le=500, description="Items per page, at most 500.")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def of(self, items: list[Any]) -> list[Any]:
        """This page of a list held whole."""
        return items[self.offset : self.offset + self.limit]

    def listing(self, items: list[Any], total: int) -> dict[str, Any]:
        """A list answer of docs/wire-contract.md §6: `{"items", "total", "page", "limit"}`."""
        return {"items": items, "total": total, "page": self.page, "limit": self.limit}


class DeliveryFilter(Pagination):
    status: Literal["queued", "waiting", "delivered", "dead"] | None = None
    endpointId: str | None = None
    sessionId: str | None = None


class DeadLetterFilter(Pagination):
    endpointId: str | None = None
    since: str | None = Field(default=None, description="ISO 8601 time; dead since then.")
    until: str | None = Field(default=None, description="ISO 8601 time; dead until then.")


class DeadTurnFilter(Pagination):
    botId: str | None = Field(default=None, description="Only this bot's.")
