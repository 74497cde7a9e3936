"""Secrets kept out of logs: the password of a URL (`redis://:pw@host`) and the value of
a secret query parameter (`?challenge.verifyToken=...`) are masked in every log record the
process makes, whoever logs it (our code, gunicorn, Celery, redis-py)."""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

#: `scheme://user:password@`: the password goes.
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*):[^@\s/]*@")
#: `name=value` in a query string, for names that carry a secret.
_SECRET_PARAMETER = re.compile(
    r"((?:challenge\.verifyToken|verifyToken|verify_token|access_token|token|password|secret)=)"
    r"[^&\s\"']+",
    re.IGNORECASE,
)


def mask(text: str) -> str:
    """`text` with URL passwords and secret query parameters masked."""
    text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    return _SECRET_PARAMETER.sub(rf"\1{MASK}", text)


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
        masked_text = mask(text)
        if masked_text != text:
            record.msg, record.args = masked_text, None
        return record

    masked.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked)
