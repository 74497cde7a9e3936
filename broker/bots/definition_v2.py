"""Version 2 of the bot definition format (`version: 2`): states by id, each of one kind;
intents and entities; variables with namespaces; messages in several languages.

These models validate a definition and are the source of its published JSON Schema
(`GET /v1/schemas/bot-definition`, `docs/bot-definition.schema.json`). docs/bot-definitions.md
describes the format for people.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    Tag,
    model_validator,
)

from broker.bots.botmessages import BotMessage, chosen_by
from broker.bots.definition_v1 import Route
from broker.core.validation import OneLineName

NAME_PATTERN = r"^[A-Za-z0-9_\-]{1,128}$"
VARIABLE_PATTERN = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"

StateId = Annotated[
    StrictStr, Field(pattern=NAME_PATTERN, description="The id of a state of this definition.")
]
Name = Annotated[StrictStr, Field(pattern=NAME_PATTERN)]
Variable = Annotated[
    StrictStr,
    Field(
        pattern=VARIABLE_PATTERN,
        max_length=256,
        description="A variable's name; dots make namespaces: `order.size`.",
    ),
]
Locale = Annotated[
    StrictStr,
    Field(
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$",
        description="A language, or a language and a region: `en`, `fr-BE`.",
    ),
]
#: A time limit: at least 0.1 s (one of 5e-324 s made every call fail), at most 10.
Seconds = Annotated[float, Field(ge=0.1, le=10)]
#: Headers that frame the request or its connection: the HTTP client writes them itself, and
#: a second one beside its own could make a proxy and the API read two different requests.
FRAMING_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"}
    | {"te", "trailer", "expect", "proxy-connection"}
)


def _header_name(name: str) -> str:
    if name.lower() in FRAMING_HEADERS:
        raise ValueError(f"the {name} header is the HTTP client's own: leave it out")
    return name


HeaderName = Annotated[
    StrictStr,
    Field(pattern=r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$", description="An HTTP header's name."),
    AfterValidator(_header_name),
]
#: Values, or each value with its synonyms: `[small, large]`, `{large: [big, xl]}`.
Options = list[Annotated[StrictStr, Field(min_length=1)]] | dict[StrictStr, list[StrictStr]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


def _kind_of(value: Any) -> str | None:
    if isinstance(value, str):
        return "Text"
    return "Message" if isinstance(value, dict) else None


#: A message: a BotMessage (docs/wire-contract.md §3), or a string for a text message.
SayItem = Annotated[
    Annotated[Annotated[StrictStr, Field(min_length=1, max_length=4096)], Tag("Text")]
    | Annotated[BotMessage, Tag("Message")],
    Discriminator(
        _kind_of,
        custom_error_type="not_a_message",
        custom_error_message="a message is a string or a BotMessage object",
    ),
]
Messages = Annotated[list[SayItem], Field(max_length=50)]


def _list_or_map(value: Any) -> str | None:
    if isinstance(value, list):
        return "List"
    if isinstance(value, str):
        return "One"
    return "Locales" if isinstance(value, dict) else None


#: What a state says: messages, one text, or messages per language (`{en: [...], fr: [...]}`).
Say = Annotated[
    Annotated[Messages, Tag("List")]
    | Annotated[Annotated[StrictStr, Field(min_length=1, max_length=4096)], Tag("One")]
    | Annotated[dict[Locale, Messages], Tag("Locales")],
    Discriminator(
        _list_or_map,
        custom_error_type="not_messages",
        custom_error_message="say holds a string, a list of messages, or messages by language",
    ),
]


class _State(_Model):
    say: Say | None = Field(
        default=None, description="Messages sent on entering the state, before its work."
    )
    description: StrictStr | None = Field(default=None, max_length=2000)


class _Listening(_Model):
    """A state that waits for the user: its keywords and its own intents come first."""

    routes: list[Route] = Field(default_factory=list, max_length=200)
    intents: dict[Name, StateId] = Field(
        default_factory=dict,
        description="Intents understood only here, each with the state it leads to.",
    )


class MessageState(_State, _Listening):
    """Says its messages, then goes to `next`, or waits for the user."""

    type: Literal["message"] = "message"
    next: StateId | None = None


InputType = Literal["text", "number", "email", "phone", "date", "choice", "yesno"]


class InputState(_State, _Listening):
    """Asks for a value of a type, checks and normalises the answer into `variable`; asks
    again with `retry` on a bad answer, and after `tries` bad answers goes to `onFail`."""

    type: Literal["input"]
    variable: Variable
    expect: InputType = "text"
    choices: Options | None = Field(
        default=None, description="For `choice`: the values, or each value with its synonyms."
    )
    entity: Name | None = Field(default=None, description="For `choice`: a list entity's values.")
    pattern: StrictStr | None = Field(default=None, description="For `text`: a regex to match.")
    min: float | None = Field(default=None, description="For `number`: the least allowed.")
    max: float | None = Field(default=None, description="For `number`: the most allowed.")
    retry: Say | None = Field(default=None, description="Said after a bad answer.")
    tries: int = Field(default=3, ge=1, le=10)
    next: StateId
    onFail: StateId | None = None

    @model_validator(mode="after")
    def _choices_for_choice(self) -> InputState:
        if self.expect == "choice" and not self.choices and not self.entity:
            raise ValueError("an input that expects a choice needs choices or an entity")
        return self


class Test(_Model):
    """One comparison of a variable: exactly one of the operators."""

    var: Variable
    equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    greater: float | None = None
    less: float | None = None
    exists: StrictBool | None = None
    matches: StrictStr | None = Field(default=None, description="A regex the value must match.")

    @model_validator(mode="after")
    def _one_operator(self) -> Test:
        given = self.model_fields_set - {"var"}
        if len(given) != 1:
            raise ValueError(
                "a condition has exactly one of equals, in, greater, less, exists, matches"
            )
        return self


class AllOf(_Model):
    all: list[Condition] = Field(min_length=1, max_length=50)


class AnyOf(_Model):
    any: list[Condition] = Field(min_length=1, max_length=50)


class NotOf(_Model):
    not_: Condition = Field(alias="not")


def _condition_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    for key, tag in (("all", "All"), ("any", "Any"), ("not", "Not")):
        if key in value:
            return tag
    return "Test"


Condition = Annotated[
    Annotated[Test, Tag("Test")]
    | Annotated[AllOf, Tag("All")]
    | Annotated[AnyOf, Tag("Any")]
    | Annotated[NotOf, Tag("Not")],
    Discriminator(
        _condition_kind,
        custom_error_type="not_a_condition",
        custom_error_message="a condition is an object: a test of a variable, all, any or not",
    ),
]


class Branch(_Model):
    if_: Condition = Field(alias="if")
    next: StateId


class ConditionState(_State):
    """Goes to the `next` of the first branch whose condition holds, else to `else`."""

    type: Literal["condition"]
    branches: list[Branch] = Field(min_length=1, max_length=100)
    else_: StateId | None = Field(default=None, alias="else")


class GotoState(_State):
    type: Literal["goto"]
    next: StateId


class SetState(_State):
    """Sets and unsets variables (unsetting a namespace unsets every name in it)."""

    type: Literal["set"]
    set: dict[Variable, Any] = Field(default_factory=dict)
    unset: list[Variable] = Field(default_factory=list)
    next: StateId | None = None


class ApiRequest(_Model):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: StrictStr = Field(min_length=1, max_length=2048, description="May hold {{variables}}.")
    headers: dict[HeaderName, StrictStr] = Field(default_factory=dict)
    body: Any = Field(default=None, description="JSON; strings may hold {{variables}}.")
    timeout: Seconds = Field(default=5.0, description="The hard limit of the whole call.")


StatusClass = Literal["3xx", "4xx", "5xx"]


class ApiState(_State):
    """Calls an HTTP API (through outbound safety), maps its JSON answer into variables and
    branches on the outcome: 2xx to `next`, a status class to its `on` state, anything else
    (no answer, refused address, time limit, a class without a branch) to `onError`."""

    type: Literal["api"]
    request: ApiRequest
    save: dict[Variable, StrictStr] = Field(
        default_factory=dict,
        description="Variables from the answer: a dotted path into its JSON (`data.items.0`), "
        "or `$status`.",
    )
    next: StateId
    on: dict[StatusClass, StateId] = Field(default_factory=dict)
    onError: StateId | None = None


class OffloadState(_State):
    """Hands the conversation to the offloading webhook (docs/wire-contract.md §4)."""

    type: Literal["offload"]
    payload: dict[str, Any] = Field(default_factory=dict)
    onFail: StateId | None = Field(
        default=None, description="Where a refused offload leads; else offloadFailedState."
    )


class EventState(_State):
    """Sends an event message (receivers skip it), then goes to `next`."""

    type: Literal["event"]
    name: StrictStr = Field(min_length=1, max_length=256)
    data: Any = None
    next: StateId | None = None


class EndState(_State):
    """Ends the conversation: variables are forgotten (but the user's own), and the next
    message starts over at the start state."""

    type: Literal["end"]


class ActionState(_State):
    """Runs a Python callable named `module:function` (see `broker.bots.custom_actions`)."""

    type: Literal["action"]
    action: StrictStr = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    timeout: Seconds = 2.0
    next: StateId | None = None
    onError: StateId | None = None


_STATE_KINDS = {
    "message": "Message",
    "input": "Input",
    "condition": "Condition",
    "goto": "Goto",
    "set": "Set",
    "api": "Api",
    "offload": "Offload",
    "event": "Event",
    "end": "End",
    "action": "Action",
}


def _state_kind(value: Any) -> str | None:
    if isinstance(value, dict) and "type" not in value:
        return "Message"
    return chosen_by("type", _STATE_KINDS)(value)


State = Annotated[
    Annotated[MessageState, Tag("Message")]
    | Annotated[InputState, Tag("Input")]
    | Annotated[ConditionState, Tag("Condition")]
    | Annotated[GotoState, Tag("Goto")]
    | Annotated[SetState, Tag("Set")]
    | Annotated[ApiState, Tag("Api")]
    | Annotated[OffloadState, Tag("Offload")]
    | Annotated[EventState, Tag("Event")]
    | Annotated[EndState, Tag("End")]
    | Annotated[ActionState, Tag("Action")],
    Discriminator(
        _state_kind,
        custom_error_type="unknown_kind",
        custom_error_message=f"type is one of {', '.join(_STATE_KINDS)}",
    ),
]


class Intent(_Model):
    examples: list[Annotated[StrictStr, Field(min_length=1, max_length=500)]] = Field(
        min_length=1,
        max_length=1000,
        description="What users say; `{entity}` stands for any value.",
    )
    next: StateId | None = Field(default=None, description="Where the intent leads.")
    states: list[StateId] | None = Field(
        default=None, description="Only understood in these states (default: in every one)."
    )
    entities: dict[Variable, Name] = Field(
        default_factory=dict, description="Variables set from the entities found in the text."
    )


class Entity(_Model):
    values: Options = Field(description="The values, or each value with its synonyms.")


class Definition(_Model):
    """A bot: what it understands and its dialogue states."""

    model_config = ConfigDict(title="Switchboard bot definition, version 2")

    version: Literal[2]
    #: The bot's name when the definition makes one (`switchboard bot push`).
    name: OneLineName | None = Field(default=None, max_length=200)
    description: StrictStr | None = Field(default=None, max_length=2000)
    language: Locale | None = Field(
        default=None, description="The language of messages when the user's has no variant."
    )
    startState: StateId
    fallbackState: StateId | None = None
    offloadFailedState: StateId | None = None
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="The least confidence an intent needs."
    )
    variables: dict[Variable, Any] = Field(
        default_factory=dict, description="Variables every conversation starts with."
    )
    routes: list[Route] = Field(default_factory=list, max_length=500)
    intents: dict[Name, Intent] = Field(default_factory=dict)
    entities: dict[Name, Entity] = Field(default_factory=dict)
    states: dict[Name, State] = Field(min_length=1, max_length=2000)


def schema() -> dict[str, Any]:
    """The JSON Schema of version 2."""
    found = Definition.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://switchboard.dev/schemas/bot-definition.json",
        **found,
    }
