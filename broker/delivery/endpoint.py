"""An endpoint: a customer URL that deliveries go to, with its settings and secrets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from broker.core import clock
from broker.core.connection import HashFields
from broker.core.defaults import ROTATED_SECRETS_KEPT, SECRET_ROTATION_OVERLAP
from broker.core.errors import ValidationFailed
from broker.core.settings import Settings

EndpointKind = Literal["channel", "offloading"]

#: The API's names of an endpoint's own delivery settings, with the fields that keep them.
OVERRIDES = {
    "retrySchedule": "retry_schedule",
    "connectTimeout": "connect_timeout",
    "totalTimeout": "total_timeout",
}


@dataclass(frozen=True)
class Endpoint:
    id: str
    kind: EndpointKind
    bot_id: str
    url: str
    secret: str
    #: The secrets rotated out, newest first, each with until when it still signs.
    previous_secrets: tuple[tuple[str, float], ...] = ()
    #: Per-endpoint overrides; empty or 0 means the settings' defaults.
    retry_schedule: tuple[float, ...] = ()
    connect_timeout: float = 0.0
    total_timeout: float = 0.0
    created_at: float = field(default_factory=clock.now)
    #: Sent as `challenge.verifyToken` in the query of every request (docs/wire-contract.md
    #: §4); offloading endpoints have one.
    verify_token: str = ""

    def request_url(self) -> str:
        """Where requests go: the URL, with the challenge where the endpoint has a token."""
        return with_challenge(self.url, self.verify_token) if self.verify_token else self.url

    def signing_secrets(self, now: float) -> list[str]:
        return [self.secret, *(secret for secret, until in self.previous_secrets if now < until)]

    def rotated(self, new_secret: str, now: float) -> Endpoint:
        """This endpoint signing with `new_secret`, and with the current secret and those
        still signing beside it for `SECRET_ROTATION_OVERLAP` (at most
        `ROTATED_SECRETS_KEPT` of them: every one is a signature on every request)."""
        kept = [(self.secret, now + SECRET_ROTATION_OVERLAP)]
        kept += [(secret, until) for secret, until in self.previous_secrets if now < until]
        return replace(self, secret=new_secret, previous_secrets=tuple(kept[:ROTATED_SECRETS_KEPT]))

    def schedule(self, settings: Settings) -> tuple[float, ...]:
        return self.retry_schedule or settings.retry_schedule

    def timeouts(self, settings: Settings) -> tuple[float, float]:
        """The connect and total timeouts that apply; a connect timeout is cut short by the
        total one, which limits the whole request, connecting included."""
        total = self.total_timeout or settings.total_timeout
        return min(self.connect_timeout or settings.connect_timeout, total), total

    def with_overrides(self, settings: Settings, given: Mapping[str, Any]) -> Endpoint:
        """This endpoint with its own delivery settings that `given` names (by their API
        names, OVERRIDES); ValidationFailed when its own connect timeout would be longer than
        the total timeout that applies, as it would never apply. A default connect timeout
        longer than its own total timeout is simply cut short by it (`timeouts`)."""
        changes: dict[str, Any] = {
            OVERRIDES[name]: float(value) if name.endswith("Timeout") else tuple(value)
            for name, value in given.items()
            if name in OVERRIDES
        }
        changed = replace(self, **changes)
        connect, total = changed.connect_timeout, changed.total_timeout or settings.total_timeout
        if connect > total:
            whose = "the endpoint's own" if changed.total_timeout else "the default"
            raise ValidationFailed(
                f"connectTimeout ({connect:g} s) would be longer than totalTimeout ({total:g} s, "
                f"{whose}), the limit of the whole request, connecting included: it would "
                "never apply",
                field="connectTimeout" if "connect_timeout" in changes else "totalTimeout",
            )
        return changed

    def overrides_view(self, settings: Settings) -> dict[str, Any]:
        """The delivery settings that apply, by their API names."""
        connect, total = self.timeouts(settings)
        return {
            "retrySchedule": list(self.schedule(settings)),
            "connectTimeout": connect,
            "totalTimeout": total,
        }

    def claim_lease(self, settings: Settings) -> float:
        """How long a worker's claim on one of its queues must last at an attempt (s)."""
        return delivery_lease(settings, self.total_timeout)

    def to_redis(self) -> HashFields:
        return {
            "id": self.id,
            "kind": self.kind,
            "botId": self.bot_id,
            "url": self.url,
            "secret": self.secret,
            "previousSecrets": json.dumps(self.previous_secrets),
            "retrySchedule": json.dumps(list(self.retry_schedule)),
            "connectTimeout": repr(self.connect_timeout),
            "totalTimeout": repr(self.total_timeout),
            "createdAt": repr(self.created_at),
            "verifyToken": self.verify_token,
        }

    @classmethod
    def from_redis(cls, raw: dict[str, str]) -> Endpoint:
        return cls(
            id=raw["id"],
            kind=raw["kind"],  # type: ignore[arg-type]
            bot_id=raw["botId"],
            url=raw["url"],
            secret=raw["secret"],
            previous_secrets=_previous_secrets(raw),
            retry_schedule=tuple(json.loads(raw.get("retrySchedule") or "[]")),
            connect_timeout=float(raw.get("connectTimeout") or 0),
            total_timeout=float(raw.get("totalTimeout") or 0),
            created_at=float(raw.get("createdAt") or 0),
            verify_token=raw.get("verifyToken", ""),
        )


def _previous_secrets(raw: dict[str, str]) -> tuple[tuple[str, float], ...]:
    """The rotated-out secrets of a stored endpoint; one saved by version 0.1 kept a single
    one, in fields of its own."""
    if "previousSecrets" in raw:
        return tuple((secret, float(until)) for secret, until in json.loads(raw["previousSecrets"]))
    if raw.get("previousSecret"):
        return ((raw["previousSecret"], float(raw.get("previousSecretUntil") or 0)),)
    return ()


def delivery_lease(settings: Settings, total_timeout: float = 0.0) -> float:
    """How long a claim on a delivery queue must last at an attempt (s): the attempt may take
    the endpoint's whole time limit, `total_timeout` (0: the settings' default, as where no
    endpoint is at hand)."""
    return settings.claim_lease + (total_timeout or settings.total_timeout)


def with_challenge(url: str, verify_token: str) -> str:
    """`url` with `challenge.verifyToken=<token>` in its query, in place of any it had."""
    parts = urlsplit(url)
    query = [
        *(
            (name, value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
            if name != "challenge.verifyToken"
        ),
        ("challenge.verifyToken", verify_token),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))
