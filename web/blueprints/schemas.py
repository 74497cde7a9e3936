"""Published JSON Schemas: the bot definition format (`docs/bot-definition.schema.json`)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from broker.bots import definition_v2
from web.apidoc import ANY_JSON, documented

bp = Blueprint("schemas", __name__)


@bp.get("/v1/schemas/bot-definition")
@documented(
    "The JSON Schema of bot definitions (version 2)",
    auth="none",
    answers={200: ANY_JSON},
    description="Editors validate and complete YAML or JSON definitions with it. Definitions "
    "without `version` (version 1) are still accepted; they are described in the README.",
    tags=["bots"],
)
def bot_definition() -> Response:
    return jsonify(definition_v2.schema())
