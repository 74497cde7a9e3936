"""Version 1 of the bot definition format: the one without a `version` field, kept working
as it was. New bots are better written in version 2 (`broker.bots.definition_v2`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictStr, Tag

from broker.bots.botmessages import BotMessage, chosen_by

_STATE_ID = Field(min_length=1, max_length=256)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Route(_Model):
    """A keyword: a text holding `match` (or equal to it, with `exact`) leads to `next`."""

    match: StrictStr = Field(min_length=1, max_length=256)
    exact: bool = False
    next: StrictStr = _STATE_ID


class Input(_Model):
    variable: StrictStr = Field(min_length=1, max_length=256)
    next: StrictStr = _STATE_ID


class SetVariable(_Model):
    type: Literal["setVariable"]
    key: StrictStr = Field(min_length=1, max_length=256)
    value: Any = None


class Offload(_Model):
    """Send the conversation to the offloading (human handover) webhook."""

    type: Literal["offload"]
    payload: dict[str, Any] = Field(default_factory=dict)


class Event(_Model):
    type: Literal["event"]
    name: StrictStr = Field(min_length=1, max_length=256)
    data: Any = None


Action = Annotated[
    Annotated[SetVariable, Tag("SetVariable")]
    | Annotated[Offload, Tag("Offload")]
    | Annotated[Event, Tag("Event")],
    Discriminator(
        chosen_by("type", {"setVariable": "SetVariable", "offload": "Offload", "event": "Event"}),
        custom_error_type="unknown_kind",
        custom_error_message="type is one of setVariable, offload, event",
    ),
]


class State(_Model):
    id: StrictStr = _STATE_ID
    messages: list[BotMessage] = Field(default_factory=list, max_length=50)
    actions: list[Action] = Field(default_factory=list, max_length=50)
    routes: list[Route] = Field(default_factory=list, max_length=200)
    input: Input | None = None
    next: StrictStr | None = Field(default=None, min_length=1, max_length=256)


class Definition(_Model):
    startState: StrictStr = _STATE_ID
    fallbackState: StrictStr | None = None
    offloadFailedState: StrictStr | None = None
    routes: list[Route] = Field(default_factory=list, max_length=500)
    states: list[State] = Field(min_length=1, max_length=2000)
