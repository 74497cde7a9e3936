"""A handover desk: the live-chat side of Switchboard's offloading webhook, in one file.

It is what a human-handover integration needs, and no more, in the spirit of the hosted
platform's public example agent server:

- it answers the health check (`GET <url>?challenge.verifyToken=...` -> `{"status": "ok"}`);
- it takes `messages` events (the user's, the bot's and the agents' messages) and `offload`
  events (a user asks for a human; the whole transcript comes with it), checking the verify
  token and the Standard Webhooks signature of each, and prints the conversation;
- it accepts every offload with `{"offloadSuccess": true, "pauseBot": true}` (or refuses it
  with `--closed`), and lets a person answer as the agent and hand back from the terminal,
  through Switchboard's conversation-actions route.

Run it against a bot (with an admin token it configures the bot's offloading integration
and makes itself an API token):

    python examples/handover_desk.py --switchboard http://127.0.0.1:8080 \\
        --bot BOT_ID --admin-token "$SWITCHBOARD_ADMIN_TOKEN" --port 8090

then type at the prompt: a line of text goes to the conversation last handed over,
`/to SESSION` picks another, `/resume [STATE]` hands it back to the bot (optionally at a
dialogue state), `/list` shows the conversations, `/quit` stops. Only the standard library
is used, so the file can be copied out and changed freely. `switchboard demo` drives this
same class without a terminal.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

JSON = dict[str, Any]


#: How far a signature's timestamp may be from now, as Standard Webhooks' libraries allow:
#: an older event signed right is a replay of a captured request.
TIMESTAMP_TOLERANCE = 300


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check a Standard Webhooks signature: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
    keyed with the `whsec_` secret, any of the space-separated signatures matching, and a
    timestamp within `TIMESTAMP_TOLERANCE` seconds of now."""
    try:
        timestamp = int(headers.get("webhook-timestamp", ""))
    except ValueError:
        return False
    if abs(time.time() - timestamp) > TIMESTAMP_TOLERANCE:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers.get('webhook-id', '')}.{headers.get('webhook-timestamp', '')}.".encode()
    expected = base64.b64encode(hmac.new(key, signed + body, hashlib.sha256).digest()).decode()
    given = headers.get("webhook-signature", "").split()
    return any(
        hmac.compare_digest(item.partition(",")[2], expected)
        for item in given
        if item.startswith("v1,")
    )


def who(item: JSON) -> str:
    """Who said a transcript item: the user, the bot, or an agent (whose messages come as
    the bot's, marked `sentByAgent`)."""
    return "agent" if item.get("sentByAgent") else str(item["actor"])


def text_of(item: JSON) -> str:
    """One transcript item in a line: what the user, the bot or an agent said."""
    message = item.get("message") or {}
    if message.get("type") == "event":
        return f"[event {message.get('name')}: {json.dumps(message.get('data'))}]"
    if "text" in message:
        return str(message["text"])
    if message.get("messageType") == "intro":
        return "[starts the conversation]"
    if message.get("messageType") == "postback":
        return f"[presses {message.get('title')!r}]"
    if message.get("messageType") == "location":
        return f"[shares a location: {message.get('coordinates')}]"
    if "attachment" in message:
        return f"[{message['attachment'].get('type')}]"
    return json.dumps(message)


@dataclass
class HandoverDesk:
    """The desk's server and its client of Switchboard's conversation-actions route."""

    switchboard: str
    bot_id: str
    api_token: str = ""
    verify_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    signing_secret: str = ""
    #: False answers every offload with `offloadSuccess: false` (no agent available).
    accepting: bool = True
    #: Where the conversation shows: print by default.
    show: Callable[[str], None] = print
    #: Called with each offload event, once it is accepted.
    on_offload: Callable[[JSON], None] | None = None
    #: Every event taken, in order, and the conversations handed over.
    events: list[JSON] = field(default_factory=list)
    handed_over: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        #: Each conversation's channel and bot version, from its events.
        self._where: dict[str, dict[str, str]] = {}
        self._server: ThreadingHTTPServer | None = None

    # --- the server Switchboard calls ---------------------------------------------------
    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1; returns the API URL to configure."""
        desk = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(*desk.health_check(self.path))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                self._answer(*desk.take(self.path, headers, body))

            def _answer(self, status: int, body: JSON) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/switchboard"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _token_ok(self, path: str) -> bool:
        given = parse_qs(urlsplit(path).query).get("challenge.verifyToken", [""])[0]
        return hmac.compare_digest(given, self.verify_token)

    def health_check(self, path: str) -> tuple[int, JSON]:
        if not self._token_ok(path):
            return 403, {"error": "wrong verify token"}
        return 200, {"status": "ok"}

    def take(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, JSON]:
        """One event. A repeat (same webhook-id, after a lost answer) is answered again,
        but shown only once."""
        if not self._token_ok(path):
            return 403, {"error": "wrong verify token"}
        if self.signing_secret and not signature_ok(self.signing_secret, headers, body):
            return 401, {"error": "bad signature"}
        event = json.loads(body)
        with self._lock:
            where = {k: event[k] for k in ("channelId", "version") if event.get(k)}
            if where:
                self._where[event["sessionId"]] = where
            fresh = headers.get("webhook-id", "") not in self._seen
            self._seen.add(headers.get("webhook-id", ""))
            if fresh:
                self.events.append(event)
        if event.get("event") == "offload":
            return 200, self._offload(event, fresh)
        if fresh:
            for item in event.get("messages", []):
                self.show(f"  [{event['sessionId']}] {who(item)}: {text_of(item)}")
        return 200, {}

    def _offload(self, event: JSON, fresh: bool) -> JSON:
        conversation = event["sessionId"]
        if not self.accepting:
            if fresh:
                self.show(f"  [{conversation}] asks for a human; no agent is available")
            return {"offloadSuccess": False, "pauseBot": False}
        if fresh:
            self.show(
                f"  [{conversation}] asks for a human ({json.dumps(event.get('payload'))}); "
                f"the conversation so far:"
            )
            for item in event.get("transcript", []):
                self.show(f"      {who(item)}: {text_of(item)}")
            with self._lock:
                if conversation not in self.handed_over:
                    self.handed_over.append(conversation)
            if self.on_offload is not None:
                self.on_offload(event)
        return {"offloadSuccess": True, "pauseBot": True}

    # --- the agent's side: Switchboard's conversation-actions route -----------------------
    def send(self, conversation: str, text: str) -> JSON:
        """Say something to the user as the agent."""
        form = {"textMessageTemplate": {"textMessages": [{"text": text}]}}
        return self._act(conversation, {"sendMessages": [form]})

    def resume(self, conversation: str, state: str | None = None) -> JSON:
        """Hand the conversation back to the bot, at `state` if given."""
        body: JSON = {"resumeBot": True}
        if state:
            body["goToDialogstate"] = state
        answer = self._act(conversation, body)
        with self._lock:
            if conversation in self.handed_over:
                self.handed_over.remove(conversation)
        return answer

    def _act(self, conversation: str, body: JSON) -> JSON:
        path = f"/v1/bots/{self.bot_id}/conversations/{quote(conversation, safe='')}/actions"
        with self._lock:
            # A session id may be on several of the bot's channels, and on its DRAFT too.
            where = self._where.get(conversation)
        if where:
            path += f"?{urlencode(where)}"
        return call(self.switchboard, "POST", path, self.api_token, body)

    def configure(self, admin_token: str, api_url: str) -> None:
        """Make this desk the bot's offloading integration (Switchboard runs the health
        check first), and get an API token for the agent's messages if there is none."""
        saved = call(
            self.switchboard,
            "PUT",
            f"/v1/bots/{self.bot_id}/offloading",
            admin_token,
            {"apiUrl": api_url, "verifyToken": self.verify_token},
        )
        self.signing_secret = saved["signingSecret"]
        if not self.api_token:
            made = call(
                self.switchboard,
                "POST",
                f"/v1/bots/{self.bot_id}/api-tokens",
                admin_token,
                {"description": "handover desk"},
            )
            self.api_token = made["token"]


def call(base: str, method: str, path: str, token: str, body: JSON) -> JSON:
    """A JSON request to Switchboard's API; an error answer raises with its message."""
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise RuntimeError(f"{method} {path} answered {exc.code}: {detail}") from exc
    found: JSON = json.loads(raw) if raw else {}
    return found


def console(desk: HandoverDesk) -> None:
    """Read the agent's lines from the terminal until /quit or the end of input."""
    current = ""
    desk.on_offload = lambda event: desk.show(
        f"  (type to answer {event['sessionId']}; /resume hands it back)"
    )
    for line in sys.stdin:
        line = line.strip()
        current = desk.handed_over[-1] if desk.handed_over and not current else current
        try:
            if line in ("/quit", "/q"):
                return
            if line == "/list":
                desk.show(f"  handed over: {', '.join(desk.handed_over) or 'none'}")
            elif line.startswith("/to "):
                current = line[4:].strip()
            elif line.startswith("/resume"):
                if current:
                    desk.resume(current, line[len("/resume") :].strip() or None)
                    desk.show(f"  {current} is the bot's again")
                    current = ""
            elif line and current:
                desk.send(current, line)
            elif line:
                desk.show("  no conversation to answer yet: wait for a handover, or /to SESSION")
        except RuntimeError as exc:
            desk.show(f"  {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switchboard", default="http://127.0.0.1:8080", help="its API")
    parser.add_argument("--bot", required=True, help="the bot whose handovers come here")
    parser.add_argument("--admin-token", help="configure the bot's offloading to this desk")
    parser.add_argument("--api-token", default="", help="the bot's API token, for answers")
    parser.add_argument("--verify-token", help="the verify token (default: a new one)")
    parser.add_argument("--signing-secret", default="", help="the offloading endpoint's secret")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--closed", action="store_true", help="refuse every offload")
    args = parser.parse_args(argv)
    desk = HandoverDesk(
        args.switchboard,
        args.bot,
        api_token=args.api_token,
        signing_secret=args.signing_secret,
        accepting=not args.closed,
    )
    if args.verify_token:
        desk.verify_token = args.verify_token
    url = desk.start(args.port)
    try:
        if args.admin_token:
            desk.configure(args.admin_token, url)
        if not desk.signing_secret:
            print(
                "handover desk: signatures are not checked (give --signing-secret, or "
                "--admin-token to configure the bot and learn it)",
                file=sys.stderr,
            )
        print(f"handover desk on {url} (verify token {desk.verify_token}); /quit to stop")
        console(desk)
    except RuntimeError as exc:
        print(f"handover desk: {exc}", file=sys.stderr)
        return 1
    finally:
        desk.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
