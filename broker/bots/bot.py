"""The bot record: a name and a dialogue definition in a DRAFT and a LIVE version, and its
Redis form (hash `sb:{b:<id>}:bot`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from broker.core import clock
from broker.core.connection import HashFields

Version = Literal["DRAFT", "LIVE"]


def as_version(text: str) -> Version:
    """A version read back from Redis."""
    if text == "DRAFT":
        return "DRAFT"
    if text == "LIVE":
        return "LIVE"
    raise ValueError(f"not a bot version: {text!r}")


@dataclass(frozen=True)
class Bot:
    id: str
    name: str
    draft: dict[str, Any]
    live: dict[str, Any]
    created_at: float
    updated_at: float
    published_at: float

    def definition(self, version: Version) -> dict[str, Any]:
        return self.live if version == "LIVE" else self.draft

    @staticmethod
    def definition_field(version: Version) -> str:
        """The hash field of one version's definition, which a bot turn reads alone."""
        return version

    def to_redis(self) -> HashFields:
        return {
            "id": self.id,
            "name": self.name,
            "DRAFT": json.dumps(self.draft),
            "LIVE": json.dumps(self.live),
            "createdAt": repr(self.created_at),
            "updatedAt": repr(self.updated_at),
            "publishedAt": repr(self.published_at),
        }

    @classmethod
    def from_redis(cls, raw: Mapping[str, str]) -> Bot:
        return cls(
            id=raw["id"],
            name=raw["name"],
            draft=json.loads(raw["DRAFT"]),
            live=json.loads(raw["LIVE"]),
            created_at=float(raw["createdAt"]),
            updated_at=float(raw["updatedAt"]),
            published_at=float(raw["publishedAt"]),
        )

    def view(self) -> dict[str, Any]:
        """The bot as the management API shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "createdAt": clock.iso(self.created_at),
            "updatedAt": clock.iso(self.updated_at),
            "publishedAt": clock.iso(self.published_at),
            "draft": self.draft,
            "live": self.live,
        }
