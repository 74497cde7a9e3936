"""What the routes' variables may hold, beyond Werkzeug's own converters."""

from __future__ import annotations

from werkzeug.routing import BaseConverter


class ConversationIdConverter(BaseConverter):
    """`<conversation:session_id>`: a conversation id as its channel gave it, any text, "/"
    included (sent as %2F, which the path holds decoded). Werkzeug's `path` would refuse
    one that starts with "/"."""

    regex = r"[\s\S]+?"  # line breaks too: "." would leave them out
    part_isolating = False
