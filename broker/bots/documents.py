"""Reading bot definitions and conversation tests from YAML or JSON text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from broker.core.errors import ValidationFailed


class _Loader(yaml.SafeLoader):
    """YAML as JSON would have it: a date such as 2026-12-25 stays a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse(text: str, name: str) -> Any:
    """The document in `text` (JSON when `name` ends in .json, else YAML, of which JSON is a
    part); ValidationFailed saying where it cannot be read."""
    try:
        if name.endswith(".json"):
            return json.loads(text)
        return yaml.load(text, Loader=_Loader)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"{name} is not valid {_kind(name)}: {exc}") from None


def load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror}") from None
    return parse(text, str(path))


def _kind(name: str) -> str:
    return "JSON" if name.endswith(".json") else "YAML"
