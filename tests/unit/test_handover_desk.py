"""The example handover desk (examples/handover_desk.py): what it answers, and its terminal."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from broker.delivery import signing
from switchboard.demo import load_example

desk_module: Any = load_example("handover_desk")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _signed(
    body: dict[str, Any], webhook_id: str = "msg_1", at: int | None = None
) -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    timestamp = int(time.time()) if at is None else at
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header([SECRET], webhook_id, timestamp, raw),
    }
    return headers, raw


def _desk(**kwargs: Any) -> Any:
    lines: list[str] = []
    desk = desk_module.HandoverDesk(
        "http://sb", "bot_1", verify_token="vt", signing_secret=SECRET, show=lines.append, **kwargs
    )
    desk.lines = lines
    return desk


OFFLOAD = {
    "event": "offload",
    "type": "offload",
    "sessionId": "ann",
    "payload": {"reason": "user asked"},
    "transcript": [
        {"actor": "user", "message": {"messageType": "text", "text": "human"}},
    ],
}


def test_the_health_check_wants_the_verify_token() -> None:
    desk = _desk()
    assert desk.health_check("/x?challenge.verifyToken=vt") == (200, {"status": "ok"})
    assert desk.health_check("/x?challenge.verifyToken=no")[0] == 403
    assert desk.health_check("/x")[0] == 403


def test_an_offload_is_taken_and_the_bot_paused_once_per_webhook_id() -> None:
    desk = _desk()
    headers, raw = _signed(OFFLOAD)
    for _ in range(2):  # a retry after a lost answer is answered the same, shown once
        assert desk.take("/x?challenge.verifyToken=vt", headers, raw) == (
            200,
            {"offloadSuccess": True, "pauseBot": True},
        )
    assert desk.handed_over == ["ann"]
    assert len(desk.events) == 1
    assert desk.lines[0].startswith("  [ann] asks for a human")
    assert desk.lines[1] == "      user: human"


def test_a_closed_desk_refuses_offloads() -> None:
    desk = _desk(accepting=False)
    headers, raw = _signed(OFFLOAD)
    answer = desk.take("/x?challenge.verifyToken=vt", headers, raw)
    assert answer == (200, {"offloadSuccess": False, "pauseBot": False})
    assert desk.handed_over == []


def test_bad_signatures_and_tokens_are_refused() -> None:
    desk = _desk()
    headers, raw = _signed({"event": "messages", "sessionId": "ann", "messages": []})
    assert desk.take("/x?challenge.verifyToken=vt", headers, raw + b" ")[0] == 401
    assert desk.take("/x?challenge.verifyToken=xx", headers, raw)[0] == 403
    old_headers, old_raw = _signed({"event": "messages", "sessionId": "ann"}, at=1700000000)
    assert desk.take("/x?challenge.verifyToken=vt", old_headers, old_raw)[0] == 401  # a replay
    assert desk.events == []


def test_messages_events_show_who_said_what() -> None:
    desk = _desk()
    event = {
        "event": "messages",
        "sessionId": "ann",
        "messages": [
            {"actor": "user", "message": {"messageType": "intro"}},
            {"actor": "bot", "message": {"text": "Hi"}},
            {"actor": "agent", "message": {"text": "Bo here"}},
            {"actor": "bot", "message": {"type": "event", "name": "bot_resumed", "data": {}}},
        ],
    }
    headers, raw = _signed(event)
    assert desk.take("/x?challenge.verifyToken=vt", headers, raw) == (200, {})
    assert desk.lines == [
        "  [ann] user: [starts the conversation]",
        "  [ann] bot: Hi",
        "  [ann] agent: Bo here",
        "  [ann] bot: [event bot_resumed: {}]",
    ]


def test_the_terminal_answers_the_last_handover_and_hands_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    desk = _desk(api_token="sbapi_x")
    headers, raw = _signed(OFFLOAD)
    desk.take("/x?challenge.verifyToken=vt", headers, raw)
    calls: list[tuple[str, str, str, dict[str, Any]]] = []

    def call(base: str, method: str, path: str, token: str, body: dict[str, Any]) -> Any:
        calls.append((method, path, token, body))
        return {}

    monkeypatch.setattr(desk_module, "call", call)
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello Ann\n/resume menu\n/list\n/quit\nlost\n"))

    desk_module.console(desk)

    path = "/v1/bots/bot_1/conversations/ann/actions"
    assert calls == [
        (
            "POST",
            path,
            "sbapi_x",
            {"sendMessages": [{"textMessageTemplate": {"textMessages": [{"text": "Hello Ann"}]}}]},
        ),
        ("POST", path, "sbapi_x", {"resumeBot": True, "goToDialogstate": "menu"}),
    ]
    assert desk.lines[-1] == "  handed over: none"


def test_the_agent_acts_on_the_channel_its_events_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session id may be on several of the bot's channels: the desk names the one its
    events came from."""
    calls: list[str] = []

    def call(base: str, method: str, path: str, token: str, body: Any) -> dict[str, Any]:
        calls.append(path)
        return {}

    monkeypatch.setattr(desk_module, "call", call)
    desk = _desk()
    headers, raw = _signed({**OFFLOAD, "channelId": "ch_2"})
    desk.take("/x?challenge.verifyToken=vt", headers, raw)
    headers, raw = _signed({**OFFLOAD, "sessionId": "cy", "version": "DRAFT"}, webhook_id="m2")
    desk.take("/x?challenge.verifyToken=vt", headers, raw)
    desk.send("ann", "hello")
    desk.send("bob", "hello")
    desk.send("cy", "hello")
    assert calls == [
        "/v1/bots/bot_1/conversations/ann/actions?channelId=ch_2",
        "/v1/bots/bot_1/conversations/bob/actions",
        "/v1/bots/bot_1/conversations/cy/actions?version=DRAFT",
    ]


def test_a_hand_back_that_fails_keeps_the_conversation_handed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def call(base: str, method: str, path: str, token: str, body: Any) -> dict[str, Any]:
        raise RuntimeError("404: no such session")

    monkeypatch.setattr(desk_module, "call", call)
    desk = _desk()
    headers, raw = _signed(OFFLOAD)
    desk.take("/x?challenge.verifyToken=vt", headers, raw)
    with pytest.raises(RuntimeError):
        desk.resume("ann")
    assert desk.handed_over == ["ann"]
