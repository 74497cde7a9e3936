"""Traffic while Redis fails over: a thread sending the conversations' messages round after
round, every answer recorded, and the check that every acknowledged message's reply came."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import requests

from tests.integration.stacks import Api
from tests.polling import wait_until
from tests.receivers import Hit, Receiver, of_conversation, texts


@dataclass
class Sent:
    conversation: str
    number: int
    status: int
    #: The answer's JSON body, or what went wrong when there was no answer.
    body: object
    at: float


class Traffic:
    """A thread sending `conversations`' messages ("<name> <round>") one after another, round
    after round, until the `with` block ends; every send recorded."""

    def __init__(self, api: Api, channel: dict[str, object], conversations: list[str]) -> None:
        self.sent: list[Sent] = []
        self.conversations = conversations
        self.api = api
        self._channel = channel
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def acknowledged_since(self, moment: float) -> int:
        """How many sends were answered 202 since `moment` (of `time.monotonic`)."""
        return sum(1 for sent in list(self.sent) if sent.status == 202 and sent.at > moment)

    def refused(self) -> list[Sent]:
        return [sent for sent in self.sent if sent.status != 202]

    def acknowledged(self) -> dict[str, list[int]]:
        """The round numbers answered 202, by conversation."""
        found: dict[str, list[int]] = defaultdict(list)
        for sent in self.sent:
            if sent.status == 202:
                found[sent.conversation].append(sent.number)
        return found

    def _run(self) -> None:
        number = 0
        while not self._stopping.is_set():
            for name in self.conversations:
                self.sent.append(self._send(name, number))
            number += 1

    def _send(self, name: str, number: int) -> Sent:
        try:
            answer = self.api.send(self._channel, name, f"{name} {number}")
        except requests.RequestException as exc:
            return Sent(name, number, 0, repr(exc), time.monotonic())
        try:
            body: object = answer.json()
        except ValueError:
            body = answer.text
        return Sent(name, number, answer.status_code, body, time.monotonic())


def once_each(receiver: Receiver) -> list[Hit]:
    """The replies delivered, the first delivery of each webhook-id."""
    first: dict[str, Hit] = {}
    for hit in receiver.delivered():
        first.setdefault(hit.webhook_id, hit)
    return list(first.values())


def assert_every_acknowledged_reply_came(traffic: Traffic, receiver: Receiver) -> list[Hit]:
    """Every refusal was a 503 with a JSON error (never a 500, never silence); every
    acknowledged message's reply came, in order per conversation, each text under one
    webhook-id however often it was tried. Returns the first delivery of each reply."""
    refused = traffic.refused()
    assert all(
        sent.status == 503 and isinstance(sent.body, dict) and "error" in sent.body
        for sent in refused
    ), refused
    acknowledged = traffic.acknowledged()
    expected = {
        f"You said: {name} {number}" for name, numbers in acknowledged.items() for number in numbers
    }

    def missing() -> set[str]:
        return expected - {hit.body["message"]["text"] for hit in receiver.delivered()}

    try:
        wait_until(lambda: not missing(), timeout=60, what="every acknowledged message's reply")
    except AssertionError as exc:
        try:
            why = _why_missing(traffic, sorted(missing()))
        except (requests.RequestException, ValueError, KeyError) as failed:
            why = f"(the stack could not say why: {failed!r})"
        raise AssertionError(f"{exc}: {why}") from None
    delivered = once_each(receiver)
    for name in traffic.conversations:
        # A message refused with 503 may still have been taken (the answer was lost, not the
        # message): its reply may come in its place, and is left out here.
        replies = [t for t in texts(of_conversation(delivered, name)) if t in expected]
        assert replies == [f"You said: {name} {number}" for number in acknowledged[name]], name
    assert_one_webhook_id_per_reply(receiver)
    return delivered


def assert_one_webhook_id_per_reply(receiver: Receiver) -> None:
    """However often a reply was tried, every try carried the same webhook-id."""
    ids: dict[str, set[str]] = defaultdict(set)
    for hit in receiver.hits:
        ids[hit.body["message"]["text"]].add(hit.webhook_id)
    assert all(len(found) == 1 for found in ids.values()), ids


def _why_missing(traffic: Traffic, missing: list[str]) -> str:
    """What the stack says of the replies that did not come: their conversations'
    deliveries that did not end delivered, the dead letters, the endpoints' states."""
    api = traffic.api
    lines = [f"{len(missing)} missing, such as {missing[:5]}"]
    sessions = sorted({text.removeprefix("You said: ").split()[0] for text in missing})
    for session in sessions[:3]:
        found = api.get("/v1/deliveries", params={"sessionId": session, "limit": 500}).json()
        for item in found.get("items", []):
            if item["status"] != "delivered":
                attempts = [(a.get("statusCode"), a.get("error")) for a in item["attempts"]]
                lines.append(f"{session}: {item['body']['message']} {item['status']} {attempts}")
    dead = api.get("/v1/dead-letters").json()
    lines.append(f"dead letters: {dead.get('total')}")
    for endpoint in api.get("/v1/endpoints").json().get("items", []):
        lines.append(f"endpoint {endpoint['id']}: {endpoint['state']} {endpoint.get('lastError')}")
    return "\n".join(lines)
