"""What the routes' variables may hold, beyond Werkzeug's own converters."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from werkzeug.routing import BaseConverter


class ConversationIdConverter(BaseConverter):
    """`<conversation:session_id>`: a conversation id as its channel gave it, any text, "/"
    included (sent as %2F, which the path holds decoded). Werkzeug's `path` would refuse
    one that starts with "/"."""

    regex = r"[\s\S]+?"  # line breaks too: "." would leave them out
    part_isolating = False

    def to_url(self, value: Any) -> str:
        # "/" escaped too: the id is one segment, which a browser does not rewrite (it
        # would resolve "a/./b" to "a/b", another conversation).
        return quote(str(value), safe="!$&'()*+,:;=@")
