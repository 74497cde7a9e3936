"""The action interface: how the pure engine reaches the world. API calls and custom actions
go through an `Actions` object that whoever runs the engine provides: the workers' one calls
HTTP through outbound safety (`workers.bot_actions`), `switchboard bot test` answers from the
conversation file, and without one every call fails (and takes its error branch).

Each call has a hard time limit: the engine gets an answer, or a failure, by then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from broker.bots.custom_actions import ActionContext, ActionResult


@dataclass(frozen=True)
class ApiRequest:
    method: str
    url: str
    headers: dict[str, str]
    #: JSON to send, or None for no body.
    body: Any
    #: The hard limit of the whole call, in seconds.
    timeout: float


def has_header(headers: Mapping[str, str], name: str) -> bool:
    """Whether `headers` has `name`, in any case: HTTP's header names are not case-sensitive."""
    wanted = name.lower()
    return any(given.lower() == wanted for given in headers)


@dataclass(frozen=True)
class ApiAnswer:
    """An HTTP answer (its status and its JSON, or None when it was not JSON), or the reason
    there was none (`status` None)."""

    status: int | None
    body: Any = None
    error: str | None = None


@dataclass(frozen=True)
class ActionOutcome:
    """What a custom action came to: its result, or why it has none."""

    result: ActionResult | None = None
    error: str | None = None


class Actions(Protocol):
    def call_api(self, request: ApiRequest) -> ApiAnswer: ...

    def run_action(self, name: str, context: ActionContext, timeout: float) -> ActionOutcome: ...


@dataclass
class NoActions:
    """For engines run where nothing may be called: every call fails."""

    reason: str = "no API calls or custom actions can run here"

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        return ApiAnswer(None, error=self.reason)

    def run_action(self, name: str, context: ActionContext, timeout: float) -> ActionOutcome:
        return ActionOutcome(error=self.reason)
