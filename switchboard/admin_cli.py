"""`switchboard bots|channels|send`: thin clients of the management API.

They talk HTTP to a running Switchboard: `--url` (or SWITCHBOARD_URL, default
http://127.0.0.1:8080) with the admin token of `--token` (or SWITCHBOARD_ADMIN_TOKEN).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

from broker.core.errors import SwitchboardError

DEFAULT_URL = "http://127.0.0.1:8080"
#: Seconds `send` polls between looks at the conversation's deliveries.
_POLL = 0.2


class Api:
    """The management API of one deployment, called with the admin token."""

    def __init__(self, base: str, token: str) -> None:
        if not token:
            raise SwitchboardError("give the admin token with --token or SWITCHBOARD_ADMIN_TOKEN")
        self.base = base.rstrip("/")
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
        url: str | None = None,
    ) -> Any:
        target = url or self.base + path
        try:
            response = requests.request(
                method,
                target,
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {token or self.token}"},
                timeout=30,
            )
        except requests.exceptions.ConnectionError:
            raise SwitchboardError(
                f"cannot reach {target}; is Switchboard running there? (--url, SWITCHBOARD_URL)"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise SwitchboardError(f"{method} {target} failed: {exc}") from None
        if response.status_code >= 400:
            raise SwitchboardError(_error_text(response))
        return response.json() if response.content else None


def _error_text(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
        text = f"{response.status_code} {error['code']}: {error['message']}"
        return text + (f" (field {error['field']})" if error.get("field") else "")
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code}: {response.text[:300]}"


def _api(args: argparse.Namespace) -> Api:
    return Api(args.url, args.token)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def cmd_bots_list(args: argparse.Namespace) -> int:
    page = _api(args).call("GET", "/v1/bots", params={"page": args.page, "limit": args.limit})
    for bot in page["items"]:
        print(f"{bot['id']}  {bot['name']}  published {bot['publishedAt']}")
    print(f"{page['total']} bot(s)")
    return 0


def _definition(args: argparse.Namespace) -> Any:
    if args.template:
        return {"template": args.template}
    try:
        return json.loads(Path(args.definition).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SwitchboardError(f"cannot read {args.definition}: {exc.strerror}") from None
    except ValueError as exc:
        raise SwitchboardError(f"{args.definition} is not valid JSON: {exc}") from None


def cmd_bots_create(args: argparse.Namespace) -> int:
    bot = _api(args).call(
        "POST", "/v1/bots", body={"name": args.name, "definition": _definition(args)}
    )
    print(bot["id"])
    return 0


def cmd_bots_publish(args: argparse.Namespace) -> int:
    bot = _api(args).call("POST", f"/v1/bots/{args.bot}/publish")
    print(f"{bot['id']}: DRAFT published as LIVE at {bot['publishedAt']}")
    return 0


def cmd_channels_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"webhookUrl": args.webhook_url, "version": args.version}
    if args.verify_token:
        body["verifyToken"] = args.verify_token
    _print_json(_api(args).call("POST", f"/v1/bots/{args.bot}/channels/webhook", body=body))
    print("keep the accessToken: it is not shown again", file=sys.stderr)
    return 0


def cmd_channels_list(args: argparse.Namespace) -> int:
    page = _api(args).call(
        "GET",
        f"/v1/bots/{args.bot}/channels/webhook",
        params={"page": args.page, "limit": args.limit},
    )
    for channel in page["items"]:
        print(f"{channel['id']}  {channel['version']}  {channel['webhookUrl']}")
    print(f"{page['total']} channel(s)")
    return 0


def cmd_channels_rotate_secret(args: argparse.Namespace) -> int:
    channel = _api(args).call(
        "POST", f"/v1/bots/{args.bot}/channels/webhook/{args.channel}/rotate-secret"
    )
    print(channel["signingSecret"])
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Post one user message to a channel, then print the bot's replies as they are queued.

    The replies are read from the conversation's deliveries (GET /v1/deliveries), so this
    works against any deployment, without a webhook receiver of its own.
    """
    if not args.access_token:
        raise SwitchboardError(
            "give the channel's access token with --access-token or SWITCHBOARD_ACCESS_TOKEN"
        )
    if args.text is None and not args.intro:
        raise SwitchboardError("give the text to send, or --intro to start the conversation")
    api = _api(args)
    channel = api.call("GET", f"/v1/bots/{args.bot}/channels/webhook/{args.channel}")
    query = {"endpointId": args.channel, "sessionId": args.conversation, "limit": 500}
    seen = {d["id"] for d in api.call("GET", "/v1/deliveries", params=query)["items"]}
    message = {"introMessage": {}} if args.intro else {"textMessage": {"text": args.text}}
    api.call(
        "POST",
        "",
        url=channel["messagesUrl"],
        token=args.access_token,
        body={"conversationId": args.conversation, "message": message},
    )
    # Wait up to --timeout for the first reply, then until --wait passes without another.
    stop_at = time.monotonic() + args.timeout
    replies = 0
    while time.monotonic() < stop_at:
        found = api.call("GET", "/v1/deliveries", params=query)["items"]
        fresh = sorted(
            (d for d in found if d["id"] not in seen), key=lambda d: d["body"]["messageCounter"]
        )
        for delivery in fresh:
            seen.add(delivery["id"])
            print(f"bot: {_shown(delivery['body']['message'])}", flush=True)
            replies += 1
            stop_at = time.monotonic() + args.wait
        time.sleep(_POLL)
    if not replies:
        print(f"(no reply within {args.timeout:g} s)", file=sys.stderr)
    return 0


def _shown(message: dict[str, Any]) -> str:
    if "text" in message:
        options = "".join(f" [{q['title']}]" for q in message.get("quick_replies") or [])
        return str(message["text"]) + options
    return json.dumps(message, ensure_ascii=False)


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("SWITCHBOARD_URL") or DEFAULT_URL,
        help=f"the API's base URL (default SWITCHBOARD_URL or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("SWITCHBOARD_ADMIN_TOKEN", ""),
        help="the admin token (default SWITCHBOARD_ADMIN_TOKEN)",
    )


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page", type=int, default=1)
    parser.add_argument("--limit", type=int, default=50)


def register(sub: Any) -> None:
    """Add the admin commands to the `switchboard` parser's subcommands."""
    bots = sub.add_parser("bots", help="bots, over the API").add_subparsers(
        dest="action", required=True
    )
    p = bots.add_parser("list", help="list bots, newest first")
    _paging(p)
    _connection(p)
    p.set_defaults(func=cmd_bots_list)
    p = bots.add_parser("create", help="create a bot and print its id")
    p.add_argument("--name", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--definition", help="a JSON file holding the definition")
    source.add_argument("--template", choices=["echo"], help="a built-in definition")
    _connection(p)
    p.set_defaults(func=cmd_bots_create)
    p = bots.add_parser("publish", help="make a bot's DRAFT its LIVE version")
    p.add_argument("bot", help="the bot id")
    _connection(p)
    p.set_defaults(func=cmd_bots_publish)

    channels = sub.add_parser("channels", help="Webhook channels, over the API").add_subparsers(
        dest="action", required=True
    )
    p = channels.add_parser("create", help="add a Webhook channel and print it, secrets included")
    p.add_argument("bot", help="the bot id")
    p.add_argument("--webhook-url", required=True, help="where the bot's replies are POSTed")
    p.add_argument("--verify-token", help="generated when not given")
    p.add_argument("--version", choices=["LIVE", "DRAFT"], default="LIVE")
    _connection(p)
    p.set_defaults(func=cmd_channels_create)
    p = channels.add_parser("list", help="list a bot's Webhook channels")
    p.add_argument("bot", help="the bot id")
    _paging(p)
    _connection(p)
    p.set_defaults(func=cmd_channels_list)
    p = channels.add_parser("rotate-secret", help="new signing secret; prints it")
    p.add_argument("bot", help="the bot id")
    p.add_argument("channel", help="the channel id")
    _connection(p)
    p.set_defaults(func=cmd_channels_rotate_secret)

    p = sub.add_parser("send", help="send a user message to a channel and print the replies")
    p.add_argument("bot", help="the bot id")
    p.add_argument("channel", help="the channel id")
    p.add_argument("text", nargs="?", help="what the user says")
    p.add_argument("--intro", action="store_true", help="start the conversation instead")
    p.add_argument(
        "--session",
        dest="conversation",
        default="cli-user",
        help="the conversationId (default cli-user)",
    )
    p.add_argument(
        "--access-token",
        default=os.environ.get("SWITCHBOARD_ACCESS_TOKEN", ""),
        help="the channel's access token (default SWITCHBOARD_ACCESS_TOKEN)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="how long to wait for the first reply (default 30 s)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=2.0,
        help="after a reply, stop once this many seconds pass without another (default 2 s)",
    )
    _connection(p)
    p.set_defaults(func=cmd_send)
