"""Secrets are masked in every log line: a URL's password, a secret query
parameter."""

from __future__ import annotations

import logging

import pytest

from broker.core import redaction


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Redis: redis://:s3cret@10.0.0.5:6379/0", "Redis: redis://:***@10.0.0.5:6379/0"),
        ("rediss://user:pa%20ss@h:6380/1 up", "rediss://user:***@h:6380/1 up"),
        ("sentinel://:pw@h1:26379,h2:26379/0", "sentinel://:***@h1:26379,h2:26379/0"),
        (
            "GET http://desk/agent?x=1&challenge.verifyToken=abc123&y=2",
            "GET http://desk/agent?x=1&challenge.verifyToken=***&y=2",
        ),
        ("redis://127.0.0.1:6379/0 has no password", "redis://127.0.0.1:6379/0 has no password"),
    ],
)
def test_redact(text: str, masked: str) -> None:
    assert redaction.redact(text) == masked


def test_once_installed_every_log_record_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    before = logging.getLogRecordFactory()
    try:
        redaction.install()
        redaction.install()  # twice is once
        with caplog.at_level(logging.INFO):
            logging.getLogger("anyone").info("Redis: %s (from REDIS_URL)", "redis://:pw@h:1/0")
            logging.getLogger("gunicorn.error").warning("broken %s", "redis://u:pw@h/0")
        assert [r.getMessage() for r in caplog.records] == [
            "Redis: redis://:***@h:1/0 (from REDIS_URL)",
            "broken redis://u:***@h/0",
        ]
        assert "pw" not in caplog.text
    finally:
        logging.setLogRecordFactory(before)
