"""The one error tree of Switchboard. Web handlers map these to HTTP answers."""

from __future__ import annotations


class SwitchboardError(Exception):
    """Root of every error Switchboard raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(SwitchboardError):
    status = 422
    code = "validation_failed"


class BadRequest(SwitchboardError):
    status = 400
    code = "bad_request"


class Unauthorized(SwitchboardError):
    status = 401
    code = "unauthorized"


class Forbidden(SwitchboardError):
    status = 403
    code = "forbidden"


class NotFound(SwitchboardError):
    status = 404
    code = "not_found"


class Conflict(SwitchboardError):
    status = 409
    code = "conflict"


class LockLost(Conflict):
    """A worker's or a request's lock on a conversation ran out before it saved its work."""


class RateLimited(SwitchboardError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AmbiguousConversation(Conflict):
    """A session id found on more than one of the bot's channels, with no channel named."""

    code = "ambiguous_conversation"


class Unavailable(SwitchboardError):
    """Redis is unreachable, read-only or out of memory, or fewer of its replicas than
    SWITCHBOARD_INGRESS_REPLICAS took a message in time: try again shortly."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnsafeURL(ValidationFailed):
    """An endpoint URL points where outbound safety does not let us go."""

    code = "unsafe_url"


class ForbiddenAddress(UnsafeURL):
    """The host resolves to an address outbound safety refuses (loopback, private, ...)."""

    def __init__(self, message: str, *, address: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.address = address


class ConfigError(SwitchboardError):
    """The environment holds a setting that cannot be used."""

    code = "config_error"
