"""The dashboard's forms and query strings: the same models parse them and describe them in
/openapi.json."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from broker.bots.bot import Version
from broker.core.validation import parse
from web.queries import Pagination
from web.request_body import form_fields

FORM = "application/x-www-form-urlencoded"


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LoginForm(_Form):
    token: str = Field(default="", max_length=1024, description="An admin token.")
    csrf: str = Field(default="", max_length=256, description="The login form's own token.")
    next: str | None = Field(default=None, max_length=2048, description="Where to go then.")


class ActionForm(_Form):
    csrf: str = Field(
        default="", max_length=256, description="The session's CSRF token (not with a bearer)."
    )


class ReplayForm(ActionForm):
    scope: Literal["selected", "endpoint"] = Field(
        default="selected",
        description="`selected`: the dead letters named by `ids`; `endpoint`: every dead "
        "letter of `endpointId`.",
    )
    ids: list[str] = Field(default_factory=list, max_length=500)
    endpointId: str | None = Field(default=None, max_length=256)


class DeadTurnForm(ActionForm):
    action: Literal["replay", "discard"] = Field(
        default="replay",
        description="`replay`: back to the end of its conversation's inbox, for a new turn; "
        "`discard`: forget it.",
    )
    ids: list[str] = Field(default_factory=list, max_length=500)


class DeadLetterPage(Pagination):
    endpointId: str | None = Field(default=None, description="Only this endpoint's.")


class DeliveryPage(DeadLetterPage):
    status: Literal["queued", "waiting", "delivered", "dead"] | None = None


class TranscriptQuery(Pagination):
    version: Version | None = Field(
        default=None,
        description="The conversation's bot version; without it, its channel's, else the other.",
    )
    channelId: str | None = Field(
        default=None,
        max_length=256,
        description="The conversation's channel, where the bot has one of that id on several.",
    )
    sessionId: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The conversation's id, on the path without it (for `.` and `..`).",
    )


class LiveQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: int = Field(default=0, ge=0, description="Samples after this time (ms) only.")


F = TypeVar("F", bound=_Form)


def form(model: type[F]) -> F:
    """The request's form, validated; lists (`ids`) from every value given."""
    fields = form_fields()
    data: dict[str, object] = {
        name: fields.getlist(name) if name == "ids" else fields[name] for name in fields
    }
    return parse(model, data)
