"""A bot's messages are BotMessages again once their `{{variables}}` are filled in, whatever the
variables hold (a user sets some): a URL that is no longer an http(s) URL fails the turn and
never reaches the endpoint, a text past its limit is cut, an empty text is not sent."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from broker.bots import conversation_tests, definition
from broker.bots.botmessages import TEXT_MAX, TITLE_MAX
from broker.bots.engine import Engine
from broker.bots.program import compile_definition
from broker.bots.rendering import Unsendable
from broker.channels.channel import Channel
from broker.conversations import dead_turns, turns
from broker.core import ids
from broker.core.connection import Redis
from broker.core.settings import Settings
from tests.conversations import new_channel, queued_bodies, read_meta, user_says
from tests.fakes import RecordingSender
from tests.unit.test_engine_states import bot, intro, say, texts

JAVASCRIPT = "javascript:alert(document.cookie)"


def _template(payload: dict[str, Any]) -> dict[str, Any]:
    return {"attachment": {"type": "template", "payload": payload}}


def _link_and_picture() -> list[dict[str, Any]]:
    """A button and an image whose URLs are the variable `link`."""
    button = {"type": "web_url", "title": "Open", "url": "{{link}}"}
    payload = {"template_type": "button", "text": "Your link", "buttons": [button]}
    return [
        _template(payload),
        {"attachment": {"type": "image", "payload": {"url": "{{link}}"}}},
    ]


#: Shows the link a button press sets; answers any text.
SHOWS_A_LINK: dict[str, Any] = {
    "version": 2,
    "startState": "start",
    "fallbackState": "echo",
    "states": {
        "start": {"say": "hi"},
        "show": {"say": _link_and_picture()},
        "echo": {"say": "You said: {{lastMessage}}"},
    },
}

_BAD_BUTTON = (
    "Unsendable: a message is no BotMessage once filled in: "
    "attachment.payload.buttons[0].url (written '{{link}}'): "
    "a URL starts with http://, https:// or tel:"
)


def _press_show(
    r: Redis, settings: Settings, sender: RecordingSender, channel: Channel, link: str
) -> None:
    """The user presses a button that leads to `show` and sets `link`."""
    user_says(
        r,
        settings,
        sender,
        channel,
        kind="postback",
        title="Show",
        payload=None,
        nextDialogstateId="show",
        sessionDataToSet=[{"key": "link", "value": link}],
    )


def test_a_url_a_user_set_to_javascript_fails_the_turn_and_never_reaches_the_endpoint(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings, SHOWS_A_LINK)
    _press_show(r, settings, sender, channel, "https://shop.example/a")
    _press_show(r, settings, sender, channel, JAVASCRIPT)
    user_says(r, settings, sender, channel, "after")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    for _ in range(settings.turn_attempts + 1):
        turns.run_pending(r, settings, sender, key)

    messages = [body["message"] for body in queued_bodies(r, key, channel.id)]
    assert JAVASCRIPT not in repr(messages)
    button, image, echo = messages
    assert button["attachment"]["payload"]["buttons"][0]["url"] == "https://shop.example/a"
    assert image["attachment"]["payload"]["url"] == "https://shop.example/a"
    assert echo == {"text": "You said: after"}
    (dead,) = dead_turns.list_page(r, offset=0, limit=10)[0]
    assert dead["item"]["sessionDataToSet"] == [{"key": "link", "value": JAVASCRIPT}]
    assert dead["error"] == _BAD_BUTTON
    assert read_meta(r, key).memory.variables["link"] == "https://shop.example/a"


def test_a_url_answered_to_an_input_is_checked_once_filled_in() -> None:
    states = {
        "start": {"say": "Your link?", "type": "input", "variable": "link", "next": "show"},
        "show": {"say": _link_and_picture()},
    }
    engine = Engine(bot(states))
    first = intro(engine)
    with pytest.raises(Unsendable, match=r"buttons\[0\]\.url \(written '\{\{link\}\}'\)"):
        say(engine, first, JAVASCRIPT)
    assert len(say(engine, first, "http://shop.example/a").outputs) == 2


_GENERIC = {"template_type": "generic", "elements": [{"title": "A", "item_url": "{{v}}"}]}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"attachment": {"type": "image", "payload": {"url": "{{v}}"}}}, "attachment.payload.url"),
        (
            {
                "text": "Pick",
                "quick_replies": [{"title": "A", "payload": "a", "image_url": "{{v}}"}],
            },
            "quick_replies[0].image_url",
        ),
        (_template(_GENERIC), "attachment.payload.elements[0].item_url"),
    ],
)
@pytest.mark.parametrize("value", ["data:text/html,x", "tel:123", "{{link}}", "notaurl", ""])
def test_a_url_that_is_no_http_url_once_filled_in_fails_naming_its_field(
    message: dict[str, Any], field: str, value: str
) -> None:
    engine = Engine(bot({"start": {"say": [message]}}))
    with pytest.raises(Unsendable, match=f"filled in: {re.escape(field)} "):
        intro(engine, sessionData={"v": value})


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"text": "{{v}}", "quick_replies": [{"title": "A", "payload": "a"}]}, "text"),
        (
            {"text": "Pick", "quick_replies": [{"title": "{{v}}", "payload": "a"}]},
            "quick_replies[0].title",
        ),
    ],
)
def test_an_empty_text_or_title_that_is_not_the_whole_message_fails_naming_it(
    message: dict[str, Any], field: str
) -> None:
    with pytest.raises(Unsendable, match=f"filled in: {re.escape(field)} "):
        intro(Engine(bot({"start": {"say": [message]}})))


def test_a_text_past_its_limit_is_cut_with_an_ellipsis(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)  # the echo bot
    user_says(r, settings, sender, channel, "x" * 10_000)
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    turns.run_pending(r, settings, sender, key)
    (body,) = queued_bodies(r, key, channel.id)
    text = body["message"]["text"]
    assert len(text) == TEXT_MAX
    assert text.startswith("You said: xxx") and text.endswith("x\u2026")


def test_titles_and_subtitles_are_cut_to_their_limit_and_urls_are_not() -> None:
    def showing(element: dict[str, Any]) -> Engine:
        generic = {"template_type": "generic", "elements": [element]}
        return Engine(bot({"start": {"say": [_template(generic)]}}))

    long = {"long": "y" * 3000}
    element = {"title": "{{long}}", "subtitle": "{{long}}"}
    (output,) = intro(showing(element), sessionData=long).outputs
    (shown,) = output.body["attachment"]["payload"]["elements"]
    assert len(shown["title"]) == len(shown["subtitle"]) == TITLE_MAX
    assert shown["title"].endswith("y\u2026")
    with pytest.raises(Unsendable, match=r"elements\[0\]\.image_url"):
        intro(showing({**element, "image_url": "https://e.example/{{long}}"}), sessionData=long)


def test_a_text_that_is_empty_once_filled_in_is_not_sent_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = Engine(bot({"start": {"say": ["{{nope}}", " {{nope}} ", "after"]}}))
    with caplog.at_level(logging.INFO, logger="broker.bots.engine"):
        assert texts(intro(engine)) == ["after"]
    assert caplog.messages == ["state 'start': a text is empty once filled in, not sent"] * 2


def test_an_event_s_data_is_not_cut() -> None:
    event = {"type": "event", "name": "shown", "data": {"text": "{{long}}"}}
    (output,) = intro(
        Engine(bot({"start": {"say": [event]}})), sessionData={"long": "z" * 5000}
    ).outputs
    assert output.body["data"]["text"] == "z" * 5000


def test_a_conversation_test_whose_message_is_no_bot_message_fails_its_step() -> None:
    program = compile_definition(definition.validate(SHOWS_A_LINK))
    step = {
        "postback": {
            "nextDialogstateId": "show",
            "sessionDataToSet": [{"key": "link", "value": "x"}],
        }
    }
    document = {"conversations": [{"name": "bad link", "steps": ["intro", step]}]}
    (outcome,) = conversation_tests.run_file(program, document)
    assert outcome.failures == [f"step 2: {_BAD_BUTTON.removeprefix('Unsendable: ')}"]
