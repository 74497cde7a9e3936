"""Reading bot definitions and conversation tests from YAML or JSON text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from broker.core import strict_json
from broker.core.errors import ValidationFailed


class KeyTwice(ValidationFailed):
    """A mapping of the document holds a key twice; `field` is the key's path."""


class _Loader(yaml.SafeLoader):
    """YAML read as YAML 1.2 reads it: a date such as 2026-12-25 stays a string, and so do
    yes, no, on and off (only true and false are booleans), so that a field named `on`
    is a field. A mapping given a key twice (PyYAML keeps the last) is noted in `twice`,
    by its id, for `strict_json.check` to name by its path."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.twice: dict[int, str] = {}

    def construct_noting_twice(self, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
        data: dict[Any, Any] = {}
        yield data
        # Its own keys: those a merge (`<<: *base`) brings may be given again.
        own = [key for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"]
        data.update(self.construct_mapping(node))
        # Built already: construct_object reads each key.
        repeated = strict_json.first_twice(self.construct_object(key) for key in own)
        if repeated is not None:
            self.twice[id(data)] = repeated


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regex)
        for tag, regex in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", _BOOL)
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_noting_twice)


def parse(text: str, name: str) -> Any:
    """The document in `text` (JSON when `name` ends in .json, else YAML, of which JSON is a
    part); ValidationFailed saying where it cannot be read, KeyTwice naming a key given
    twice."""
    try:
        if name.endswith(".json"):
            return strict_json.loads(text, unique_keys=True)
        loader = _Loader(text)
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    except strict_json.DuplicateKey as exc:
        raise KeyTwice(f"{name}: {exc}", field=exc.field) from None
    except RecursionError:
        raise ValidationFailed(f"{name} is nested too deeply") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"{name} is not valid {_kind(name)}: {exc}") from None
    try:
        strict_json.check(document, loader.twice)
    except strict_json.DuplicateKey as exc:
        raise KeyTwice(f"{name}: {exc}", field=exc.field) from None
    except ValueError as exc:
        raise ValidationFailed(f"{name}: {exc}") from None
    return document


def load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            f"{path} is not UTF-8 text (byte {exc.start} cannot be read)"
        ) from None
    return parse(text, str(path))


def _kind(name: str) -> str:
    return "JSON" if name.endswith(".json") else "YAML"
