"""Bot definitions: which version of the format a document is in, and its validation, which
reports every fault with its path (`definition.states.order.next: unknown state "pay"`).

A document without `version` (or with `version: 1`) is version 1, the format of the first
releases (`broker.bots.definition_v1`); `version: 2` is the current one
(`broker.bots.definition_v2`). `{"template": NAME}` names a built-in definition.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from broker.bots import definition_v1, definition_v2
from broker.bots.faults import DefinitionInvalid, Fault, join, of_pydantic
from broker.bots.references import UrlCheck, v1_faults, v2_faults
from broker.bots.templates import TEMPLATES

VERSIONS = (1, 2)

M = TypeVar("M", bound=BaseModel)


def validate(
    definition: Any, *, check_url: UrlCheck | None = None, prefix: str = "definition"
) -> dict[str, Any]:
    """A definition ready to store: a template name is expanded. Anything wrong raises
    DefinitionInvalid with every fault. `check_url` judges the API URLs written out in it
    (outbound safety); without it only their scheme is checked."""
    if not isinstance(definition, dict):
        raise DefinitionInvalid([Fault(prefix, "a definition is a JSON object")])
    if "template" in definition:
        name = definition["template"]
        if set(definition) != {"template"} or not isinstance(name, str) or name not in TEMPLATES:
            raise DefinitionInvalid(
                [
                    Fault(
                        join(prefix, "template"),
                        f"unknown template; the templates are: {', '.join(sorted(TEMPLATES))}",
                    )
                ]
            )
        return dict(TEMPLATES[name])
    version = version_of(definition)
    if version == 1:
        given = {key: value for key, value in definition.items() if key != "version"}
        model = _checked(definition_v1.Definition, given, prefix, v1_faults(given, prefix))
        return model.model_dump(exclude_none=True)
    if version == 2:
        _checked(
            definition_v2.Definition, definition, prefix, v2_faults(definition, prefix, check_url)
        )
        return dict(definition)
    raise DefinitionInvalid(
        [Fault(join(prefix, "version"), "version is 2, or 1 (the same as leaving it out)")]
    )


def version_of(definition: dict[str, Any]) -> int | None:
    """1 or 2, or None for a version this release does not know."""
    version = definition.get("version", 1)
    return version if version in VERSIONS and not isinstance(version, bool) else None


def _checked(model: type[M], given: dict[str, Any], prefix: str, more: list[Fault]) -> M:
    try:
        checked = model.model_validate(given)
    except ValidationError as exc:
        raise DefinitionInvalid([*of_pydantic(exc, given, prefix), *more]) from exc
    if more:
        raise DefinitionInvalid(more)
    return checked
