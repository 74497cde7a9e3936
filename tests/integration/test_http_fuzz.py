"""A seeded fuzz test of the web process, in raw HTTP: 10,000
requests against every route of /openapi.json, with bad chunking, lengths that lie, non-ASCII
and control characters in the request line and headers, invalid UTF-8, lone surrogates, deep
nesting, wrong types and bad credentials. No answer is a 5xx, every refusal is a JSON error,
and nothing refused is processed: a refused message is in no inbox, a refused bot does not
exist.

Each message and each new bot carries a marker of its own (its conversation id or its
name), so that what was accepted and what was refused can be told apart afterwards. The
stack runs the web process only: accepted messages wait in their inboxes.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from broker.conversations.conversation import split_index_member
from broker.core import keys
from tests.integration.raw_http import Reply, request
from tests.integration.stacks import ADMIN_TOKEN, OwnStack, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis

REQUESTS = 10_000
SEED = 20261130

#: Path segments no id is: encoded NUL, invalid UTF-8, an encoded lone surrogate, dots, raw
#: non-ASCII bytes, a control character, a very long one.
JUNK_SEGMENTS = [
    b"x",
    b"%00",
    b"%ff%fe",
    b"%ed%b3%80",
    b"..",
    b"%2e%2e",
    b"\xc3\xa9",
    b"\xe9",
    b"a%20b",
    b"%01",
    b"%zz",
    b"a" * 3000,
]

#: Strings that break naive code: a lone surrogate escape, invalid UTF-8, control
#: characters, right-to-left marks, nothing at all, a lot.
NASTY_JSON_STRINGS = [
    b'"\\udc00"',
    b'"a\\ud800b"',
    b'"\\udfff\\ud800"',
    b'"\xff\xfe"',
    b'"\xc3"',
    b'"\\u0000"',
    b'"\x01\x02"',
    b'"\xe2\x80\xae"',
    b'""',
    b'"' + b"x" * 20_000 + b'"',
]
NASTY_VALUES: list[Any] = [None, True, -1, 0, 1e308, 10**40, 3.5, [], {}, "", "x" * 300, [1, [2]]]


@dataclass
class Target:
    """What the fuzzer knows of the stack: real ids and credentials, and the markers it used."""

    port: int
    bot_id: str
    channel: dict[str, Any]
    other_channel: dict[str, Any]
    api_token: str
    routes: list[tuple[str, str]]
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted_markers: set[str] = field(default_factory=set)
    refused_markers: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    sent: int = 0


@pytest.fixture(scope="module")
def fuzzed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStack]:
    require_redis()
    log: Path = tmp_path_factory.mktemp("fuzz") / "stack.log"
    with own_stack(log) as own:
        # Failed authentications are many here on purpose: their throttle has tests of its own.
        own.start(
            "web",
            own.env(
                SWITCHBOARD_AUTH_FAILURES="100000000",
                SWITCHBOARD_AUTH_FAILURES_PER_TARGET="100000000",
            ),
        )
        wait_until(lambda: _healthy(own), timeout=60, what="the web process")
        yield own


def _healthy(own: OwnStack) -> bool:
    try:
        return own.api.get("/healthz").status_code == 200
    except requests.RequestException:
        return False


def _target(own: OwnStack) -> Target:
    api = own.api
    channel = api.echo_channel("http://127.0.0.1:9/hook")
    bot_id = channel["botId"]
    other = api.post(
        f"/v1/bots/{bot_id}/channels/webhook", json={"webhookUrl": "http://127.0.0.1:9/other"}
    ).json()
    token = api.post(f"/v1/bots/{bot_id}/api-tokens", json={"description": "fuzz"}).json()
    assert api.send(channel, "seed", "hi").status_code == 202
    document = api.get("/openapi.json").json()
    routes = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(routes) >= 30
    # The routes that store what they accept are tried more often: they are what loses data.
    routes += [(m, path) for m, path in routes if m == "POST" and _stores(path)] * 3
    port = own.port
    return Target(port, bot_id, channel, other, token["token"], routes)


def _stores(path: str) -> bool:
    return path == "/v1/bots" or path.endswith("/messages")


class Fuzzer:
    def __init__(self, target: Target, rng: random.Random, number: int) -> None:
        self.t = target
        self.rng = rng
        self.number = number
        self.marker = f"fz{number}"

    # --- the parts of a request ---------------------------------------------------------
    def path(self, method: str, template: str) -> bytes:
        # The bot whose inboxes are checked afterwards is never deleted.
        keep = method == "DELETE" and template.rstrip("/").endswith(("{botId}", "{channelId}"))
        values = {
            "botId": [b"bot_nope"] if keep else [self.t.bot_id.encode(), b"bot_nope"],
            "channelId": [str(self.t.other_channel["id"]).encode()]
            if keep
            else [str(self.t.channel["id"]).encode(), str(self.t.other_channel["id"]).encode()],
            "sessionId": [b"seed", self.marker.encode()],
            "endpointId": [self.t.channel["id"].encode(), b"off_" + self.t.bot_id.encode()],
            "deliveryId": [b"msg_" + b"0" * 36, b"msg_x"],
            "tokenId": [b"adm_0123456789abcdef", b"tok_x"],
            "deadTurnId": [b"dturn_" + b"0" * 36],
        }
        out = template.encode()
        for name in re.findall(r"\{(\w+)\}", template):
            choices = values.get(name, [b"x"])
            value = (
                self.rng.choice(choices)
                if self.rng.random() < 0.85
                else self.rng.choice(JUNK_SEGMENTS)
            )
            out = out.replace(b"{" + name.encode() + b"}", value)
        return out + self.query()

    def query(self) -> bytes:
        r = self.rng.random()
        if r < 0.5:
            return b""
        pairs = [
            b"version=" + self.rng.choice([b"LIVE", b"DRAFT", b"live", b"%ff", b""]),
            b"channelId=" + self.rng.choice([self.t.channel["id"].encode(), b"%ed%b3%80", b"x"]),
            b"page=" + self.rng.choice([b"1", b"0", b"-1", b"abc", b"99999999999999999999"]),
            b"limit=" + self.rng.choice([b"50", b"0", b"501", b"1e3"]),
            b"paused=" + self.rng.choice([b"true", b"maybe"]),
            b"since=" + self.rng.choice([b"2026-01-01T00:00:00Z", b"yesterday", b"%00"]),
            b"status=" + self.rng.choice([b"dead", b"nope"]),
            b"botId=" + self.rng.choice([self.t.bot_id.encode(), b"\xe9"]),
            self.rng.choice([b"%zz=%", b"&&&", b"a=" + b"b" * 2000]),
        ]
        return b"?" + b"&".join(self.rng.sample(pairs, self.rng.randint(1, 4)))

    def authorization(self, path: bytes) -> bytes | None:
        good_admin = b"Bearer " + ADMIN_TOKEN.encode()
        channel_token = b"Bearer " + str(self.t.channel["accessToken"]).encode()
        if path.startswith(b"/v1/channels/"):
            preferred = channel_token
        elif b"/actions" in path:
            preferred = self.rng.choice([good_admin, b"Bearer " + self.t.api_token.encode()])
        else:
            preferred = good_admin
        if self.rng.random() < 0.7:
            return preferred
        others: list[bytes | None] = [
            None,
            b"",
            b"Bearer",
            b"Bearer ",
            b"Bearer wrong",
            b"Bearer \xe9",
            b"Bearer \xc3\xa9",
            b"Bearer " + b"a" * 5000,
            b"Basic YWRtaW46YWRtaW4=",
            b"bearer " + ADMIN_TOKEN.encode(),
            b"Bearer " + ADMIN_TOKEN.encode() + b"\x01",
            channel_token,
            b"Bearer " + self.t.api_token.encode(),
        ]
        return self.rng.choice(others)

    def body(self, method: str, path: bytes) -> tuple[bytes, str | None]:
        """The body, and the marker it carries where it would make a message or a bot."""
        if method in ("GET", "DELETE") and self.rng.random() < 0.8:
            return b"", None
        document, kind = self.document(path)
        marker = self.marker_of(kind) if kind is not None else None
        r = self.rng.random()
        if r < 0.45:
            return json.dumps(document).encode(), marker
        if r < 0.75:
            return self.mutated(document), marker
        return self.raw_junk(), marker

    def marker_of(self, kind: str) -> str:
        """`fzm<n>` for a message, `fzb<n>` for a bot."""
        return f"fz{kind[0]}{self.number}"

    def document(self, path: bytes) -> tuple[Any, str | None]:
        m = self.marker_of("message")
        if path.startswith(b"/v1/channels/"):
            body: dict[str, Any] = {"conversationId": m, "message": {"textMessage": {"text": "hi"}}}
            if self.rng.random() < 0.3:
                body["sessionData"] = {"k": self.rng.choice(NASTY_VALUES)}
            return body, "message"
        if path.startswith(b"/api/webhookMessage/"):
            token = self.rng.choice([self.t.channel["verifyToken"], "wrong-verify-token-x"])
            return {"text": "hi", "sender": {"id": m}, "verifyToken": token}, "message"
        if path.startswith(b"/v1/bots") and path.count(b"/") == 2:
            return {"name": self.marker_of("bot"), "definition": {"template": "echo"}}, "bot"
        if b"/actions" in path:
            return self.rng.choice(
                [
                    {"sendMessages": [{"text": "agent"}]},
                    {"resumeBot": True, "goToDialogstate": "x"},
                    {"sendMessages": [{"textMessageTemplate": {"textMessages": [{"text": "t"}]}}]},
                ]
            ), None
        if b"/channels/webhook" in path:
            return {"webhookUrl": "http://127.0.0.1:9/h", "verifyToken": "v" * 20}, None
        if b"/offloading" in path:
            return {"apiUrl": "http://127.0.0.1:9/desk", "verifyToken": "v" * 20}, None
        if b"/draft" in path:
            return {"definition": {"template": "echo"}}, None
        return self.rng.choice([{}, {"endpointId": "x"}, {"description": "d"}]), None

    def mutated(self, document: Any) -> bytes:
        text = json.dumps(document).encode()
        how = self.rng.randrange(9)
        if how == 0:  # a string becomes a nasty one (a lone surrogate, invalid UTF-8...)
            strings = list(re.finditer(rb'"(?:[^"\\]|\\.)*"', text))
            if strings:
                chosen = self.rng.choice(strings)
                return (
                    text[: chosen.start()]
                    + self.rng.choice(NASTY_JSON_STRINGS)
                    + text[chosen.end() :]
                )
            return text
        if how == 1:  # deep nesting
            depth = self.rng.choice([200, 5000, 100_000])
            return b"[" * depth + b"1" + b"]" * depth
        if how == 2:  # a value of the wrong type
            if isinstance(document, dict) and document:
                key = self.rng.choice(list(document))
                return json.dumps({**document, key: self.rng.choice(NASTY_VALUES)}).encode()
            return b"[]"
        if how == 3:  # a key missing
            if isinstance(document, dict) and document:
                key = self.rng.choice(list(document))
                return json.dumps({k: v for k, v in document.items() if k != key}).encode()
            return b"{}"
        if how == 4:
            return text[: self.rng.randrange(max(len(text), 1))]
        if how == 5:
            return text + self.rng.choice([b"x", b"}", b"\x00", b" \xff"])
        if how == 6:
            return self.rng.choice([b"NaN", b"Infinity", b"1e999", b'{"a": NaN}', b"-"])
        if how == 7:  # a lone surrogate in a key
            return text.replace(b'"', b'"\\udc00', 1)
        return text.replace(b"hi", b"\\ud83d", 1)  # half of an emoji

    def raw_junk(self) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(0, 300)))

    # --- one request --------------------------------------------------------------------
    def head_and_body(self) -> tuple[str, bytes, bytes, str | None, bool]:
        method, template = self.rng.choice(self.t.routes)
        if self.rng.random() < 0.05:
            method = self.rng.choice(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
        path = self.path(method, template)
        body, marker = self.body(method, path)
        if method != "POST" or (marker is not None and marker.encode() not in body):
            marker = None  # not a creation, or mutated away: it names nothing it would make
        lines = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1"]
        auth = self.authorization(path)
        if auth is not None:
            lines.append(b"Authorization: " + auth)
        content_type = self.rng.choice(
            [
                b"application/json",
                b"application/json",
                b"application/json; charset=latin-1",
                b"text/plain",
                None,
                b"multipart/form-data; boundary=x",
            ]
        )
        if content_type is not None and body:
            lines.append(b"Content-Type: " + content_type)
        lines += self.extra_headers()
        framing = self.rng.random()
        half_close = False
        if not body and method in ("GET", "DELETE", "OPTIONS", "HEAD"):
            pass
        elif framing < 0.6:
            lines.append(b"Content-Length: %d" % len(body))
        elif framing < 0.8:
            lines.append(b"Transfer-Encoding: chunked")
            body = self.chunked(body)
            half_close = True
        elif framing < 0.9:  # says more than it sends
            lines.append(b"Content-Length: %d" % (len(body) + self.rng.randint(1, 100)))
            half_close = True
        else:  # both, or nonsense
            lines.append(
                self.rng.choice(
                    [
                        b"Content-Length: %d\r\nTransfer-Encoding: chunked" % len(body),
                        b"Content-Length: abc",
                        b"Content-Length: -5",
                        b"Transfer-Encoding: gzip, chunked",
                    ]
                )
            )
            half_close = True
        lines.append(b"Connection: close")
        return method, b"\r\n".join(lines), body, marker, half_close

    def extra_headers(self) -> list[bytes]:
        pool = [
            b"Idempotency-Key: "
            + self.rng.choice([b"\xe9\xff", b"k" * 600, b"key-" + self.marker.encode()]),
            b"X-Forwarded-For: 10.0.0.1, \xff",
            b"Accept: */*",
            b"X-Note: caf\xc3\xa9",
            b"X-Ctl: a\x01b",
            b"X-Tab: a\tb",
            b"Expect: 100-continue",
            b"X-Dup: 1\r\nX-Dup: 2",
            b"Cookie: session=" + b"c" * 100,
        ]
        return self.rng.sample(pool, self.rng.choice([0, 0, 0, 1, 2]))

    def chunked(self, body: bytes) -> bytes:
        r = self.rng.random()
        if r < 0.5:
            return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        return self.rng.choice(
            [
                b"zz\r\n" + body + b"\r\n0\r\n\r\n",
                b"%x\r\n%s" % (len(body) + 5, body),
                b"%x\r\n%sXX0\r\n\r\n" % (len(body), body),
                b"ffffffffffffffff\r\n" + body,
                b"%x;ext=\x01\r\n%s\r\n0\r\n\r\n" % (len(body), body),
                b"-1\r\n",
            ]
        )


def _one(target: Target, number: int) -> None:
    fuzzer = Fuzzer(target, random.Random(SEED * 100_003 + number), number)
    method, head, body, marker, half_close = fuzzer.head_and_body()
    try:
        reply = request(target.port, head, body, half_close=half_close)
    except OSError as exc:  # reset while we still sent: the server refused without reading
        reply = None
        note = f"{type(exc).__name__}"
    else:
        note = "closed without an answer"
    problem = _problem(method, head, reply) if reply is not None else None
    with target.lock:
        target.sent += 1
        if reply is None:
            target.statuses[0] = target.statuses.get(0, 0) + 1
            if marker is not None:
                target.refused_markers.add(marker)
            if method not in ("HEAD",) and not half_close:
                target.failures.append(f"#{number} {head[:200]!r}: {note}")
            return
        target.statuses[reply.status] = target.statuses.get(reply.status, 0) + 1
        if problem:
            target.failures.append(f"#{number} {head[:300]!r} {body[:100]!r}: {problem}")
        if marker is not None:
            (target.accepted_markers if 200 <= reply.status < 300 else target.refused_markers).add(
                marker
            )


def _problem(method: str, head: bytes, reply: Reply) -> str | None:
    if head.split(b" ")[1].startswith(b"/readyz") and reply.status == 503:
        return None  # not ready, as it says: this stack runs no worker on purpose
    if reply.status >= 500:
        return f"{reply.status} {reply.body[:300]!r}"
    if reply.status >= 400 and method != "HEAD" and not reply.is_json_error():
        return f"{reply.status} is not a JSON error: {reply.headers} {reply.body[:300]!r}"
    return None


def _run(target: Target, count: int, job: Callable[[Target, int], None]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: job(target, n), range(count)))


def test_ten_thousand_hostile_requests_get_no_5xx_and_only_json_refusals(
    fuzzed_stack: OwnStack,
) -> None:
    target = _target(fuzzed_stack)
    _run(target, REQUESTS, _one)
    assert target.sent == REQUESTS
    assert not target.failures, "\n".join(target.failures[:20]) + f"\n({len(target.failures)})"
    print(f"{REQUESTS} requests, statuses {dict(sorted(target.statuses.items()))}")
    # Every route was reached with good credentials often enough to pass authentication
    # (a message with a control character in a header, or both a length and chunking, is
    # refused by the server before the route, so one in a few hundred passes: each new route
    # of the document takes its share of the requests).
    assert target.statuses.get(202, 0) > 20 and target.statuses.get(200, 0) > 500
    data = fuzzed_stack.data
    present: set[str] = set()
    for version in ("LIVE", "DRAFT"):
        for member in data.zrange(keys.bot_conversations(target.bot_id, version), 0, -1):
            present.add(split_index_member(member)[1])
    bots: set[str] = set()
    for bot_id in data.zrange(keys.BOTS, 0, -1):
        name = data.hget(keys.bot(bot_id), "name")
        if name is not None:
            bots.add(name)
    refused = target.refused_markers - target.accepted_markers
    assert not (refused & (present | bots)), sorted(refused & (present | bots))[:20]
    # ... and what was accepted is there: a message in its inbox, a bot in the listing.
    messages = {m for m in target.accepted_markers if m.startswith("fzm")}
    made_bots = {m for m in target.accepted_markers if m.startswith("fzb")}
    assert messages <= present and made_bots <= bots
    assert len(messages) > 10 and len(made_bots) > 10
    assert len(refused) > 200
