"""Secrets kept out of logs: bearer tokens, our tokens and signing secrets, the password of
a URL (`redis://:pw@host`), secret query parameters (`?challenge.verifyToken=...`) and
secret fields are masked in every log record the process makes, whoever logs it (our
code, gunicorn, Celery, redis-py), and again by our formatters (`broker.core.logs`)."""

from __future__ import annotations

import logging
import re
from typing import Any

#: What a secret looks like in text, and what is kept of it.
_SECRETS = [
    # Authorization headers and bearer tokens quoted anywhere.
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1***"),
    # Our tokens and secrets, by their prefixes: signing secrets, admin and API tokens.
    (re.compile(r"\b(whsec_|sbadm_|sbapi_|sbat_)[A-Za-z0-9+/=_-]+"), r"\1***"),
    # A password in a URL: scheme://user:password@host.
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1***@"),
    # Tokens in a query string: challenge.verifyToken=..., access_token=..., token=...
    (re.compile(r"(?i)([?&](?:challenge\.verifyToken|[a-z_]*token|secret)=)[^&\s\"']+"), r"\1***"),
    # Tokens and secrets as JSON fields or key=value pairs.
    (
        re.compile(
            r"(?i)([\"']?(?:[a-z]*token|[a-z]*secret|password)[\"']?\s*[:=]\s*[\"']?)"
            r"[^\"'\s,}&]+"
        ),
        r"\1***",
    ),
]


#: Where a masked record keeps what it was logged with before masking put its values into
#: its text: that text (masked) and its values' types. A line's kind is made of them where
#: repeats are thinned out (`logs.Repeats`): each retry's values are not another kind.
LOGGED_AS = "switchboard_logged_as"

#: Text without any of these holds none of the secrets above: most lines are passed as they are.
_MARKERS = ("bearer", "whsec_", "sbadm_", "sbapi_", "sbat_", "://", "token", "secret", "password")


def redact(text: str) -> str:
    """`text` with every secret it seems to hold masked."""
    lowered = text.lower()
    if not any(marker in lowered for marker in _MARKERS):
        return text
    for pattern, kept in _SECRETS:
        text = pattern.sub(kept, text)
    return text


def install() -> None:
    """Mask every log record made from now on in this process (once is enough)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "masks_secrets", False):
        return

    def masked(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a bad format: logging reports it when it emits
            return record
        masked_text = redact(text)
        if masked_text != text:
            logged_as = (redact(str(record.msg)), value_types(record.args))
            setattr(record, LOGGED_AS, logged_as)
            record.msg, record.args = masked_text, None
        return record

    masked.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked)


def value_types(args: object) -> tuple[type, ...]:
    """The types of a log record's values (none when they are a mapping)."""
    return tuple(type(value) for value in args) if isinstance(args, tuple) else ()
