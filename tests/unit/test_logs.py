"""Log lines: one JSON object per event, with its ids, and no secret in it."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from broker.core import logs, redaction
from broker.core.connection import Redis
from broker.core.errors import ConfigError
from broker.core.settings import Settings
from tests.conversations import new_channel, user_says
from tests.fakes import RecordingSender


def as_json(record: logging.LogRecord) -> dict[str, object]:
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    found: dict[str, object] = json.loads(line)
    return found


def test_an_event_is_one_json_line_with_its_ids(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("switchboard.test")
    with caplog.at_level(logging.INFO):
        logs.event(log, logging.INFO, "delivery attempt", deliveryId="msg_1", endpointId="ch_2")
    (record,) = caplog.records
    line = as_json(record)
    assert line["event"] == "delivery attempt"
    assert (line["deliveryId"], line["endpointId"], line["level"]) == ("msg_1", "ch_2", "INFO")
    assert line["logger"] == "switchboard.test" and str(line["time"]).endswith("Z")
    assert "statusCode" not in line


def test_an_accepted_message_logs_its_message_and_session_ids(
    fake_redis: Redis, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    channel = new_channel(fake_redis, settings)
    with caplog.at_level(logging.INFO, logger="broker.conversations.ingress"):
        accepted = user_says(fake_redis, settings, RecordingSender(), channel, "hi")
    (record,) = caplog.records
    line = as_json(record)
    assert line["event"] == "message queued"
    assert line["messageId"] == accepted.message_id and line["sessionId"] == "u1"
    assert line["channelId"] == channel.id


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("Authorization: Bearer sbat_abcdef123", "Authorization: Bearer ***"),
        ("secret whsec_QUJDREVG+/= rotated", "secret whsec_*** rotated"),
        ("token sbadm_x-Y_z made", "token sbadm_*** made"),
        ("Redis: redis://:hunter2@cache:6379/0", "Redis: redis://:***@cache:6379/0"),
        ("amqp://user:pw@mq/", "amqp://user:***@mq/"),
        (
            "GET https://desk.example/api?challenge.verifyToken=abc123&x=1",
            "GET https://desk.example/api?challenge.verifyToken=***&x=1",
        ),
        ('{"verifyToken": "abc", "text": "hi"}', '{"verifyToken": "***", "text": "hi"}'),
        ("accessToken=abc signingSecret=def", "accessToken=*** signingSecret=***"),
        (
            "delivery msg_0123 to ch_9 failed: HTTP 500",
            "delivery msg_0123 to ch_9 failed: HTTP 500",
        ),
    ],
)
def test_secrets_are_masked(said: str, kept: str) -> None:
    assert redaction.redact(said) == kept


def test_secrets_are_masked_in_messages_fields_and_exceptions() -> None:
    log = logging.getLogger("switchboard.test")
    try:
        raise RuntimeError("connect to redis://:pw@db failed")
    except RuntimeError:
        record = log.makeRecord(
            log.name,
            logging.ERROR,
            __file__,
            1,
            "sent with %s",
            ("Bearer sbapi_q",),
            exc_info=sys.exc_info(),
            extra={"switchboard_fields": {"url": "https://x/?token=abc"}},
        )
    line = as_json(record)
    assert line["event"] == "sent with Bearer ***"
    assert line["url"] == "https://x/?token=***"
    assert "pw" not in str(line["exception"]) and "redis://:***@db" in str(line["exception"])
    text = logs.TextFormatter().format(record)
    assert "sbapi_q" not in text and "token=***" in text


def test_an_unknown_log_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="SWITCHBOARD_LOG_FORMAT must be one of json, text"):
        logs.configure("INFO", "xml")


def test_repeats_of_one_kind_are_thinned_out_and_counted() -> None:
    clock = [100.0]
    repeats = logs.Repeats(every=30.0, now=lambda: clock[0])

    def line(text: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord("web.errors", level, __file__, 1, text, args, None)

    first = line("Redis is %s: %s", "unreachable", "ConnectionError")
    assert repeats.filter(first)
    assert not any(repeats.filter(line("Redis is %s: %s", "read-only", "X")) for _ in range(5))
    # Another kind (text or level) goes through on its own.
    assert repeats.filter(line("delivery queue %s left for now", "q"))
    assert repeats.filter(line("Redis is %s: %s", "a", "b", level=logging.ERROR))
    clock[0] += 30.0
    later = line("Redis is %s: %s", "unreachable", "ConnectionError")
    assert repeats.filter(later)
    assert later.getMessage() == (
        "Redis is unreachable: ConnectionError [5 more like it not logged since the last]"
    )
    clock[0] += 31.0
    quiet = line("Redis is %s: %s", "unreachable", "ConnectionError")
    assert repeats.filter(quiet) and quiet.getMessage() == "Redis is unreachable: ConnectionError"


def test_another_error_is_another_kind_of_line() -> None:
    repeats = logs.Repeats(every=30.0, now=lambda: 0.0)

    def failed(error: Exception) -> logging.LogRecord:
        info = (type(error), error, None)
        text = "unhandled error"
        return logging.LogRecord("web.errors", logging.ERROR, __file__, 1, text, (), info)

    assert repeats.filter(failed(KeyError("a")))
    assert not repeats.filter(failed(KeyError("a")))  # the same again: thinned
    assert repeats.filter(failed(KeyError("b")))
    assert repeats.filter(failed(ValueError("a")))


def test_an_exception_among_the_values_makes_the_kind_by_its_type() -> None:
    repeats = logs.Repeats(every=30.0, now=lambda: 0.0)

    def failed(error: Exception) -> logging.LogRecord:
        text = "turn runner: Redis failed, trying again: %s"
        name = "workers.turn_runners"
        return logging.LogRecord(name, logging.WARNING, "", 1, text, (error,), None)

    assert repeats.filter(failed(ConnectionError("Command # 1 (BLPOP) failed")))
    assert not repeats.filter(failed(ConnectionError("Command # 2 (LPOP) failed")))
    assert repeats.filter(failed(TimeoutError("no answer")))


FORGED = (
    "u1\n2026-12-02 10:00:00,000 ERROR broker: forged\x1b[2J\x85\x9b\u2028\u2029\u202e\U000e0001"
)


def forged_event(error: str = "HTTP 500: boom") -> logging.LogRecord:
    log = logging.getLogger("switchboard.test")
    return log.makeRecord(
        log.name,
        logging.WARNING,
        __file__,
        1,
        "delivery attempt: failure",
        (),
        None,
        extra={"switchboard_fields": {"sessionId": FORGED, "error": error, "attempt": 2}},
    )


def test_a_text_line_writes_what_a_user_sent_as_escapes() -> None:
    text = logs.TextFormatter().format(forged_event())
    assert text.isprintable()  # one line, nothing for a terminal to act on
    assert (
        "sessionId=u1\\n2026-12-02 10:00:00,000 ERROR broker: forged"
        "\\x1b[2J\\x85\\x9b\\u2028\\u2029\\u202e\\U000e0001"
    ) not in text  # quoted: it holds spaces
    assert text.endswith(
        'sessionId="u1\\\\n2026-12-02 10:00:00,000 ERROR broker: forged'
        '\\\\x1b[2J\\\\x85\\\\x9b\\\\u2028\\\\u2029\\\\u202e\\\\U000e0001"'
        ' error="HTTP 500: boom" attempt=2'
    )


def test_a_text_value_cannot_forge_a_field() -> None:
    text = logs.TextFormatter().format(forged_event(error='HTTP 500: x" sessionId=admin'))
    assert ' error="HTTP 500: x\\" sessionId=admin" ' in text


def test_a_text_line_s_message_is_one_line_and_its_traceback_escaped() -> None:
    log = logging.getLogger("switchboard.test")
    try:
        raise ValueError("bad \x1b[2J value")
    except ValueError:
        record = log.makeRecord(
            log.name, logging.ERROR, __file__, 1, "got %s\n", ("a\nb",), sys.exc_info()
        )
    head, *traceback = logs.TextFormatter().format(record).split("\n")
    assert head.endswith("ERROR switchboard.test: got a\\nb")
    assert traceback[-1] == "ValueError: bad \\x1b[2J value"


def test_a_json_line_escapes_every_line_break_and_control_character() -> None:
    line = logs.JsonFormatter().format(forged_event())
    assert line.isprintable()
    assert "\\u0085\\u009b\\u2028\\u2029\\u202e\\udb40\\udc01" in line
    assert json.loads(line)["sessionId"] == FORGED


def test_a_role_says_once_when_redis_answers_again_and_after_how_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, log, outage = _outage_on_a_clock("switchboard.test.outage")
    repeats = logs.Repeats(every=30.0, now=lambda: clock[0])
    log.addFilter(repeats)
    try:
        with caplog.at_level(logging.INFO, logger=log.name):
            outage.ended()  # no trouble: nothing to say
            for _ in range(2):  # trouble that comes back within the thinning's 30 s
                outage.began(since=clock[0] - 10.0)  # a call made 10 s ago failed
                clock[0] += 7.4
                outage.began(since=clock[0] - 1.0)  # still the same trouble
                clock[0] += 5.0
                outage.ended()
                outage.ended()
    finally:
        log.removeFilter(repeats)
    said = [(line.levelno, line.getMessage()) for line in caplog.records]
    assert said == [(logging.WARNING, "Redis reachable again after 22 s")] * 2


def test_a_role_that_only_noticed_the_trouble_says_when_it_noticed_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, log, outage = _outage_on_a_clock("switchboard.test.noticed")
    with caplog.at_level(logging.INFO, logger=log.name):
        outage.began()
        clock[0] += 3.0
        outage.began(since=clock[0] - 1.0)  # later than when it was first noticed
        clock[0] += 2.0
        outage.ended()
    said = [line.getMessage() for line in caplog.records]
    assert said == ["Redis reachable again; its trouble was noticed 5 s ago"]


def _outage_on_a_clock(logger: str) -> tuple[list[float], logging.Logger, logs.RedisOutage]:
    """A RedisOutage logging to `logger`, on a clock the test moves (its one item)."""
    clock = [100.0]
    log = logging.getLogger(logger)
    return clock, log, logs.RedisOutage(log, now=lambda: clock[0])


def consumer_line(attempt: int, error: Exception) -> logging.LogRecord:
    """Celery's consumer's line at each try to reach its broker, made as `logging` makes it
    (the secrets masked, `redaction.install`)."""
    return logging.getLogRecordFactory()(
        "celery.worker.consumer.consumer",
        logging.ERROR,
        __file__,
        1,
        "consumer: Cannot connect to %s: %s.\n%s\n",
        (
            "redis://:hunter2@cache:6379/0",
            error,
            f"Trying again in {2 * attempt:.2f} seconds... ({attempt}/100)",
        ),
        None,
    )


@pytest.fixture
def masking() -> Iterator[None]:
    """Records made as `redaction.install` has them made, during the test only."""
    made = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    redaction.install()
    yield
    logging.setLogRecordFactory(made)


@pytest.mark.usefixtures("masking")
def test_a_line_whose_secret_was_masked_keeps_its_kind() -> None:
    repeats = logs.Repeats(every=30.0, now=lambda: 0.0)
    refused = ConnectionError("Error 111 connecting to cache:6379. Connection refused.")
    first = consumer_line(1, refused)
    assert "hunter2" not in first.getMessage()
    assert repeats.filter(first)
    assert not any(repeats.filter(consumer_line(attempt, refused)) for attempt in range(2, 6))
    assert repeats.filter(consumer_line(6, TimeoutError("timed out")))  # another error
