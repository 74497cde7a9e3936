"""Query strings of the API. The same models parse requests and describe them in /openapi.json."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: A time of a query or body, as /openapi.json says it (only the document: the route reads
#: it with `broker.core.clock.ms_of_iso`, which also takes other ISO 8601 forms).
TimeText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def _time_or_empty(schema: dict[str, Any]) -> None:
    """The schema of an optional time also says that an empty string is no bound."""
    schema["anyOf"].insert(1, {"const": ""})


def time_bound(description: str) -> Any:
    """The field of an optional time that bounds a filter (`since`, `until`)."""
    return Field(default=None, description=description, json_schema_extra=_time_or_empty)


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
    since: TimeText | None = time_bound("ISO 8601 time; dead since then (empty: no bound).")
    until: TimeText | None = time_bound("ISO 8601 time; dead until then (empty: no bound).")


class DeadTurnFilter(Pagination):
    botId: str | None = Field(default=None, description="Only this bot's.")
