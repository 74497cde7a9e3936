"""Request bodies and query strings of the management API, and the answers of its
conversation, agent, offloading and API-token routes. The same models validate
requests and describe them in /openapi.json."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictStr,
)

from broker.bots.templates import TEMPLATES
from broker.conversations.conversation_store import SCAN_LIMIT
from broker.core.settings import rate_or_off, starts_at_once
from broker.core.validation import OneLine, OneLineName
from web.queries import Pagination, TimeText, time_bound

#: A channel's verify token: whatever the customer chose (a short one is easier to guess on
#: the legacy route, where it alone lets messages in: leave it out to have one made).
VerifyToken = Annotated[StrictStr, Field(min_length=1, max_length=256)]

# The `json_schema_extra` and `description` below only shape /openapi.json; what validates
# is the same as without them.

#: An endpoint URL, as /openapi.json says it: outbound safety (broker/delivery/netsafety.py)
#: checks the rest when it is saved (`422`).
URL_SCHEMA: dict[str, Any] = {"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}
URL_DESCRIPTION = (
    "An http:// or https:// URL with a host and no credentials; one that resolves to a "
    "loopback, private, link-local, multicast or reserved address is refused (`422`) unless "
    "SWITCHBOARD_OUTBOUND_ALLOWLIST lets it through."
)

#: A bot definition, as /openapi.json says it; `broker.bots.definition.validate` judges it.
_TEMPLATE_NAMES: list[JsonValue] = [*sorted(TEMPLATES)]
_DEFINITION = Field(
    description='A bot definition: `{"template": NAME}` for a built-in one, or a definition '
    "validated against the JSON Schema served at `GET /v1/schemas/bot-definition` (version 2, "
    "with `version: 2`; without `version` it is read as version 1, described in the README). "
    "A definition that does not validate is `422`, with every fault and its path in `errors`.",
    json_schema_extra={
        "oneOf": [
            {
                "title": "Template",
                "required": ["template"],
                "properties": {"template": {"enum": _TEMPLATE_NAMES}},
                "additionalProperties": False,
            },
            {
                "title": "Definition",
                "description": "See `GET /v1/schemas/bot-definition`.",
                "required": ["startState", "states"],
                "properties": {
                    "template": False,
                    "version": {"enum": [1, 2]},
                    "startState": {"type": "string"},
                    "states": {"type": "object"},
                },
            },
        ]
    },
)


class _Body(BaseModel):
    # Strict: JSON `true` is no number and "5" no float.
    model_config = ConfigDict(extra="forbid", strict=True)


#: A bot's name: one line of text, as listings show one bot a line (`switchboard bots list`).
BotName = Annotated[
    OneLineName,
    Field(min_length=1, max_length=200, description="One line: no control characters."),
]


class CreateBot(_Body):
    name: BotName
    definition: dict[str, Any] = _DEFINITION


class PutDraft(_Body):
    definition: dict[str, Any] = _DEFINITION


class CreateChannel(_Body):
    webhookUrl: StrictStr = Field(
        min_length=1, max_length=2048, description=URL_DESCRIPTION, json_schema_extra=URL_SCHEMA
    )
    verifyToken: VerifyToken | None = None
    version: Literal["DRAFT", "LIVE"] = "LIVE"


#: Seconds before each attempt; at most a week each.
Delay = Annotated[float, Field(ge=0, le=7 * 24 * 3600)]


class _DeliverySettings(_Body):
    """An endpoint's own retry schedule and timeouts (`broker.delivery.endpoint.OVERRIDES`)."""

    retrySchedule: Annotated[list[Delay], AfterValidator(starts_at_once)] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="Seconds before each attempt, after the one before; the first is 0.",
    )
    # At least 0.1 s: one of 5e-324 s made every attempt fail.
    connectTimeout: float | None = Field(
        default=None,
        ge=0.1,
        le=60,
        description="Seconds to connect; longer than the total timeout that applies is `422`.",
    )
    totalTimeout: float | None = Field(
        default=None, ge=0.1, le=300, description="Seconds for the whole request."
    )


class PatchChannel(_DeliverySettings):
    webhookUrl: Annotated[StrictStr, Field(json_schema_extra=URL_SCHEMA)] | None = Field(
        default=None, min_length=1, max_length=2048, description=URL_DESCRIPTION
    )
    verifyToken: VerifyToken | None = None
    version: Literal["DRAFT", "LIVE"] | None = None
    rateLimit: Annotated[float, AfterValidator(rate_or_off)] | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Inbound messages per second for this channel (0: no limit, else at "
        "least 0.001); its burst keeps the proportion of the defaults'.",
    )


class DeadLetterReplay(_Body):
    endpointId: StrictStr | None = None
    since: Annotated[TimeText, Field(strict=True)] | None = time_bound(
        "ISO 8601 time; dead since then (empty: no bound)."
    )
    until: Annotated[TimeText, Field(strict=True)] | None = time_bound(
        "ISO 8601 time; dead until then (empty: no bound)."
    )


# --- conversations, agent actions, offloading, API tokens -------------------------

Version = Literal["DRAFT", "LIVE"]


_CHANNEL = Field(
    default=None,
    min_length=1,
    max_length=256,
    description="The session's channel; needed where the bot has several channels and more "
    "than one has a session of that id (`409 ambiguous_conversation` otherwise).",
)


class VersionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Version = Field(default="LIVE", description="The bot version: DRAFT or LIVE.")
    channelId: str | None = _CHANNEL


class VersionPageQuery(Pagination):
    version: Version = Field(default="LIVE", description="The bot version: DRAFT or LIVE.")
    channelId: str | None = _CHANNEL


class ConversationListQuery(VersionPageQuery):
    paused: bool | None = Field(
        default=None,
        description="`true`: only conversations a human agent has; `false`: only the others.",
    )


def _something_to_do(schema: dict[str, Any]) -> None:
    """What the route requires beyond the fields' own rules (a null counts as absent)."""
    resume = {"required": ["resumeBot"], "properties": {"resumeBot": {"const": True}}}
    schema["allOf"] = [
        {
            "description": "`sendMessages` (at least one) or `resumeBot: true`, or both.",
            "anyOf": [
                {"required": ["sendMessages"], "properties": {"sendMessages": {"type": "array"}}},
                resume,
            ],
        },
        {
            "description": "`goToDialogstate` only with `resumeBot: true`.",
            "anyOf": [{"properties": {"goToDialogstate": {"type": "null"}}}, resume],
        },
    ]


class ConversationAction(_Body):
    """Agent messages and/or hand-back (docs/wire-contract.md §4): `sendMessages` (at least
    one), `resumeBot: true`, or both; `goToDialogstate` needs `resumeBot: true`. Each
    `sendMessages` item is a BotMessage or one of Chatlayer's conversation-action forms
    (`textMessageTemplate`, `buttonTemplate`, `quickReplyTemplate`, `attachmentTemplate`,
    `carouselTemplate`, `listTemplate`)."""

    model_config = ConfigDict(json_schema_extra=_something_to_do)

    sendMessages: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=50)
    resumeBot: StrictBool | None = None
    goToDialogstate: StrictStr | None = Field(default=None, min_length=1, max_length=256)


class ConfigureOffloading(_DeliverySettings):
    """Those of the delivery settings left out are the defaults."""

    apiUrl: StrictStr = Field(
        min_length=1, max_length=2048, description=URL_DESCRIPTION, json_schema_extra=URL_SCHEMA
    )
    # The platform's own token, sent to it: whatever it chose.
    verifyToken: StrictStr = Field(min_length=1, max_length=256)


class CreateApiToken(_Body):
    description: OneLine = Field(default="", max_length=200)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConversationSummary(_Answer):
    sessionId: str
    version: Version
    channelId: str | None
    state: str | None = Field(description="The dialogue state the session is in.")
    paused: bool = Field(description="True while a human agent has the conversation.")
    offloadPending: bool = Field(
        description="True while an offload waits for the offloading webhook's answer; the "
        "user's new messages wait for it."
    )
    messageCount: int = Field(description="Items in the transcript.")
    lastActivityAt: str


class ConversationList(_Answer):
    """A page of a bot version's sessions, the most recently active first."""

    items: list[ConversationSummary]
    total: int
    page: int
    limit: int
    scanLimited: bool | None = Field(
        default=None,
        description="Present and true when a listing by `channelId` did not look at every "
        f"session: it stopped after the version's {SCAN_LIMIT:,} most recently active ones "
        "(`total` counts the channel's among them, pages past them are empty).",
    )


class TranscriptItem(_Answer):
    actor: Literal["user", "bot", "agent"] = Field(
        description="Who said it: the user, the bot, or a human agent."
    )
    timestamp: str
    message: dict[str, Any] = Field(
        description="A UserMessage (actor `user`) or a BotMessage (actors `bot` and `agent`)."
    )


class Transcript(_Answer):
    """A page of the session's transcript, oldest first."""

    items: list[TranscriptItem]
    total: int
    page: int
    limit: int


class SessionData(_Answer):
    """The session's variables."""

    sessionId: str
    version: Version
    sessionData: dict[str, Any]


class ActionDone(_Answer):
    """The agent's messages are queued for the channel webhook, in this order."""

    botId: str
    sessionId: str
    version: Version
    paused: bool
    deliveryIds: list[str]


class Offloading(_Answer):
    """The bot's offloading integration; its endpoint signs with its own secret."""

    botId: str
    apiUrl: str
    verifyToken: str
    endpointId: str
    signingSecret: str
    retrySchedule: list[float]
    connectTimeout: float
    totalTimeout: float
    createdAt: str
    updatedAt: str


class ApiToken(_Answer):
    """A bot-scoped API token (the token itself is shown only when it is made)."""

    id: str
    botId: str
    description: str
    createdAt: str


class CreatedApiToken(ApiToken):
    """The new API token, with the token (shown this once)."""

    token: str


class ApiTokenList(_Answer):
    """A bot's API tokens."""

    items: list[ApiToken]
    total: int
    page: int
    limit: int
