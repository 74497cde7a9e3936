"""Property-based test of the whole API against its own document (/openapi.json).

Schemathesis generates valid and malformed requests for every inbound and
management route from the document; the app runs in-process on a real Redis.
Every answer must be documented (status, content type, body schema, headers),
none may be a 5xx, malformed input must be refused, and a refused inbound
message must leave the conversation inboxes and the task queue untouched.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from requests.structures import CaseInsensitiveDict
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Err

from broker.bots import bot_store
from broker.channels import channel_store
from broker.conversations.conversation import split_index_member
from broker.core import ids, keys
from broker.core.errors import UnsafeURL
from broker.core.settings import Settings
from broker.delivery import netsafety
from tests.settings import LOOPBACK
from tests.web_app import ADMIN, WebApp, web_app

#: Examples per operation and generation mode; the inbound routes get the most.
EXAMPLES = {
    "/v1/channels/webhook/{channelId}/messages": 500,
    "/api/webhookMessage/{botId}": 300,
}
DEFAULT_EXAMPLES = 22
#: Not inbound or management routes: the document (tests/api/test_apidoc.py) and
#: health (/readyz is 503 here by design: no worker runs).
SKIPPED = {"/docs", "/openapi.json", "/healthz", "/readyz"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
INBOUND = {"channel", "verify_token"}
FORM = "application/x-www-form-urlencoded"


@dataclass
class World:
    """A bot with a channel that the generated requests are pointed at, most of the time."""

    web: WebApp
    setup: Settings
    bot_id: str = ""
    channel: dict[str, Any] = field(default_factory=dict)
    tried: int = 0

    def ensure(self) -> None:
        r = self.web.redis
        if self.channel and r.exists(keys.channel(self.channel["id"])):
            return
        if not self.bot_id or not bot_store.exists(r, self.bot_id):
            self.bot_id = bot_store.create(r, "fuzz", {"template": "echo"})["id"]
        self.channel = channel_store.create(r, self.setup, self.bot_id, "http://127.0.0.1:9/hook")

    def aim(self, case: Case[Any], auth: str, *, negative: bool) -> None:
        """Point three requests in four at the real bot and channel, with valid credentials."""
        self.ensure()
        if self.tried % 4 == 0:
            return
        real = {
            "botId": self.bot_id,
            "channelId": self.channel["id"],
            "endpointId": self.channel["id"],
        }
        # Generated values are replaced, never changed in place: Hypothesis may share them.
        case.path_parameters = {
            name: real.get(name, value) for name, value in (case.path_parameters or {}).items()
        }
        if auth != "none":
            headers = CaseInsensitiveDict(case.headers or {})
            if auth == "channel":
                headers["Authorization"] = f"Bearer {self.channel['accessToken']}"
            else:
                headers.update(ADMIN)
            case.headers = headers
        body = case.body
        # A malformed token stays malformed: the request must still be refused.
        if (
            auth == "verify_token"
            and isinstance(body, dict)
            and isinstance(body.get("verifyToken"), str)
        ):
            case.body = {**body, "verifyToken": self.channel["verifyToken"]}

    def queued(self) -> tuple[int, int]:
        """Messages in the inboxes of the bot's conversations, and bot turns asked for."""
        r = self.web.redis
        version = self.channel["version"]
        conversations = r.zrange(keys.bot_conversations(self.bot_id, version), 0, -1)
        pipe = r.pipeline(transaction=False)
        for member in conversations:
            channel_id, conversation_id = split_index_member(member)
            key = ids.conversation_key(self.bot_id, version, channel_id, conversation_id)
            pipe.llen(keys.conversation_inbox(key))
        return sum(pipe.execute()), len(self.web.sender.turns)


def _malformed_body(case: Case[Any]) -> bool:
    """Only a malformed JSON body must be refused: aim() replaces the credentials, and every
    query or form value is a string on the wire whatever type the generator meant (a form's
    `endpointId=false` is the text "false", which the form takes)."""
    if case.media_type == FORM:
        return False
    data = case.meta.phase.data if case.meta is not None else None
    mutations = getattr(data, "mutations", ())
    return bool(mutations) and all(
        m.parameter_location == ParameterLocation.BODY for m in mutations
    )


def _literal_only(host: str, port: int) -> list[tuple[socket.AddressFamily, netsafety.IPAddress]]:
    """Addresses as they are; no name lookups, so generated host names cost nothing."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise UnsafeURL(f"the fuzz test resolves no names ({host!r})") from exc
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    return [(family, address)]


def _run(
    world: World, case_strategy: Any, examples: int, check: Callable[[Case[Any]], None]
) -> None:
    @hypothesis.given(case=case_strategy)
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case[Any]) -> None:
        check(case)

    # Unsatisfiable: nothing of the operation can be made malformed (no parameters, no body).
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        run()


def test_generated_requests_get_documented_answers_and_refusals_queue_nothing(
    monkeypatch: pytest.MonkeyPatch, record_property: Callable[[str, object], None]
) -> None:
    monkeypatch.setattr(netsafety, "resolve", _literal_only)
    # Malformed credentials are many here: throttled, they would turn every later answer
    # into a 429 (the throttle has tests of its own).
    unthrottled: dict[str, Any] = {"auth_failures": 0, "auth_failures_per_target": 0}
    # As `switchboard web` serves it: the message route answered without the Flask app (its
    # Flask view is the same steps, and the inbound tests run both ways).
    with web_app(direct=True, outbound_allowlist=(), rate_limit_per_second=0, **unthrottled) as web:
        world = World(web, web.settings.with_changes(outbound_allowlist=LOOPBACK))
        document = web.client.get("/openapi.json").get_json()
        schema = schemathesis.openapi.from_wsgi("/openapi.json", web.app)
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()
            operation = result.ok()
            if operation.path in SKIPPED:
                continue
            auth = document["paths"][operation.path][operation.method.lower()]["x-auth"]
            examples = EXAMPLES.get(operation.path, DEFAULT_EXAMPLES)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                def check(case: Case[Any], auth: str = auth, mode: GenerationMode = mode) -> None:
                    world.aim(case, auth, negative=mode.is_negative)
                    before = world.queued()
                    response = case.call()
                    world.tried += 1
                    checks = CHECKS + ([negative_data_rejection] if _malformed_body(case) else [])
                    case.validate_response(response, checks=checks)
                    if auth in INBOUND and response.status_code >= 400:
                        # Less is fine: another run of the suite may flush the database.
                        (inbox, turns), (inbox_before, turns_before) = world.queued(), before
                        assert inbox <= inbox_before, "a refused message was queued"
                        assert turns == turns_before, "a refused message woke a bot turn"

                _run(world, operation.as_strategy(generation_mode=mode), examples, check)
        record_property("generated_requests", world.tried)
        print(f"\n{world.tried} generated requests tried")
        assert world.tried >= 2000
