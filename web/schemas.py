"""Request bodies of the management API. The same models validate requests and
describe them in /openapi.json."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateBot(_Body):
    name: StrictStr = Field(min_length=1, max_length=200)
    definition: dict[str, Any]


class PutDraft(_Body):
    definition: dict[str, Any]


class CreateChannel(_Body):
    webhookUrl: StrictStr = Field(min_length=1, max_length=2048)
    verifyToken: StrictStr | None = Field(default=None, min_length=1, max_length=256)
    version: Literal["DRAFT", "LIVE"] = "LIVE"


#: Seconds before each attempt; at most a week each.
Delay = Annotated[float, Field(ge=0, le=7 * 24 * 3600)]


class PatchChannel(_Body):
    webhookUrl: StrictStr | None = Field(default=None, min_length=1, max_length=2048)
    verifyToken: StrictStr | None = Field(default=None, min_length=1, max_length=256)
    version: Literal["DRAFT", "LIVE"] | None = None
    retrySchedule: list[Delay] | None = Field(default=None, min_length=1, max_length=50)
    connectTimeout: float | None = Field(default=None, gt=0, le=60)
    totalTimeout: float | None = Field(default=None, gt=0, le=300)


class DeadLetterReplay(_Body):
    endpointId: StrictStr | None = None
    since: StrictStr | None = None
    until: StrictStr | None = None
