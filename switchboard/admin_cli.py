"""`switchboard bots|channels|send`: thin clients of the management API.

They talk HTTP to a running Switchboard: `--url` (or SWITCHBOARD_URL, default
http://127.0.0.1:8080) with the admin token of `--token` (or SWITCHBOARD_ADMIN_TOKEN).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar
from urllib.parse import quote

import click

from broker.core import strict_json
from broker.core.errors import SwitchboardError

if TYPE_CHECKING:
    import requests

DEFAULT_URL = "http://127.0.0.1:8080"
#: Seconds `send` polls between looks at the conversation's deliveries.
_POLL = 0.2


#: What a bearer token may hold (RFC 6750's b64token): anything else never opens anything,
#: and a header cannot carry all of it.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def checked_token(token: str, what: str) -> str:
    if not _TOKEN.fullmatch(token):
        raise SwitchboardError(f"{what} holds characters that no token has")
    return token


def api_path(*segments: str) -> str:
    """An API path of `segments`, each id in it kept to one segment: an id holding `/`, `?`
    or `#` names nothing, it never reaches another route."""
    return "".join("/" + quote(segment, safe="") for segment in segments)


class Api:
    """The management API of one deployment, called with the admin token."""

    def __init__(self, base: str, token: str) -> None:
        if not token:
            raise SwitchboardError("give the admin token with --token or SWITCHBOARD_ADMIN_TOKEN")
        self.base = base.rstrip("/")
        self.token = checked_token(token, "the admin token (--token, SWITCHBOARD_ADMIN_TOKEN)")

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
        expect: Sequence[str] = (),
    ) -> Any:
        """The answer's JSON; SwitchboardError for an error answer, or for one that is not
        an object with the fields of `expect` (the URL is not a Switchboard API)."""
        import requests  # here, so that the commands that make no HTTP call start sooner

        target = self.base + path
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
        if not response.content and not expect:
            return None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or any(name not in answer for name in expect):
            kind = response.headers.get("Content-Type", "no content type")
            raise SwitchboardError(
                f"{target} did not answer as Switchboard's API does ({response.status_code}, "
                f"{kind}); is --url (SWITCHBOARD_URL) right?"
            )
        return answer


def _error_text(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
        text = f"{response.status_code} {error['code']}: {error['message']}"
        return text + (f" (field {error['field']})" if error.get("field") else "")
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code}: {response.text[:300]}"


P = ParamSpec("P")
R = TypeVar("R")


# An option whose help tells its default has show_default=False, not to tell it twice.
def connection(command: Callable[P, R]) -> Callable[P, R]:
    """The options that reach the API: `--url` and `--token`."""
    command = click.option(
        "--token",
        envvar="SWITCHBOARD_ADMIN_TOKEN",
        default="",
        show_default=False,
        help="the admin token (default SWITCHBOARD_ADMIN_TOKEN)",
    )(command)
    return click.option(
        "--url",
        envvar="SWITCHBOARD_URL",
        default=DEFAULT_URL,
        show_default=False,
        help=f"the API's base URL (default SWITCHBOARD_URL or {DEFAULT_URL})",
    )(command)


def _paging(command: Callable[P, R]) -> Callable[P, R]:
    command = click.option("--limit", type=click.IntRange(1, 500), default=50)(command)
    return click.option("--page", type=click.IntRange(min=1), default=1)(command)


def _usage(message: str) -> NoReturn:
    raise click.UsageError(message, click.get_current_context())


@click.group("bots")
def bots() -> None:
    """bots, over the API"""


@bots.command("list")
@_paging
@connection
def cmd_bots_list(page: int, limit: int, url: str, token: str) -> None:
    """list bots, newest first"""
    from switchboard.listing import Column, show

    found = Api(url, token).call(
        "GET", "/v1/bots", params={"page": page, "limit": limit}, expect=("items", "total")
    )
    show(
        [Column("id"), Column("name"), Column("published", "published ")],
        [[bot["id"], bot["name"], bot["publishedAt"]] for bot in found["items"]],
        f"{found['total']} bot(s)",
    )


def _definition(definition: str | None, template: str | None) -> Any:
    """The `--definition` file's content or the `--template`: one of the two, not both."""
    if definition is not None and template is not None:
        _usage("argument --definition: not allowed with argument --template")
    if template is not None:
        return {"template": template}
    if definition is None:
        _usage("one of the arguments --definition --template is required")
    try:
        return strict_json.loads(Path(definition).read_text(encoding="utf-8"), unique_keys=True)
    except OSError as exc:
        raise SwitchboardError(f"cannot read {definition}: {exc.strerror}") from None
    except ValueError as exc:
        raise SwitchboardError(f"{definition} is not valid JSON: {exc}") from None


@bots.command("create")
@click.option("--name", required=True)
@click.option("--definition", help="a JSON file holding the definition")
@click.option("--template", type=click.Choice(["echo"]), help="a built-in definition")
@connection
def cmd_bots_create(
    name: str, definition: str | None, template: str | None, url: str, token: str
) -> None:
    """create a bot and print its id"""
    body = {"name": name, "definition": _definition(definition, template)}
    click.echo(Api(url, token).call("POST", "/v1/bots", body=body, expect=("id",))["id"])


@bots.command("publish")
@click.argument("bot")
@connection
def cmd_bots_publish(bot: str, url: str, token: str) -> None:
    """make a bot's DRAFT its LIVE version"""
    published = Api(url, token).call(
        "POST", api_path("v1", "bots", bot, "publish"), expect=("id", "publishedAt")
    )
    click.echo(f"{published['id']}: DRAFT published as LIVE at {published['publishedAt']}")


@bots.command("delete")
@click.argument("bot")
@connection
def cmd_bots_delete(bot: str, url: str, token: str) -> None:
    """delete a bot with its channels, offloading integration and API tokens"""
    Api(url, token).call("DELETE", api_path("v1", "bots", bot))
    click.echo(f"{bot}: deleted")


@click.group("channels")
def channels() -> None:
    """Webhook channels, over the API"""


@channels.command("create")
@click.argument("bot")
@click.option("--webhook-url", required=True, help="where the bot's replies are POSTed")
@click.option("--verify-token", help="generated when not given")
@click.option("--version", type=click.Choice(["LIVE", "DRAFT"]), default="LIVE")
@connection
def cmd_channels_create(
    bot: str, webhook_url: str, verify_token: str | None, version: str, url: str, token: str
) -> None:
    """add a Webhook channel and print it, secrets included"""
    body: dict[str, Any] = {"webhookUrl": webhook_url, "version": version}
    if verify_token:
        body["verifyToken"] = verify_token
    channel = Api(url, token).call(
        "POST",
        api_path("v1", "bots", bot, "channels", "webhook"),
        body=body,
        expect=("id", "accessToken"),
    )
    click.echo(json.dumps(channel, indent=2, ensure_ascii=False))
    click.echo("keep the accessToken: it is not shown again", err=True)


@channels.command("list")
@click.argument("bot")
@_paging
@connection
def cmd_channels_list(bot: str, page: int, limit: int, url: str, token: str) -> None:
    """list a bot's Webhook channels"""
    from switchboard.listing import Column, show

    found = Api(url, token).call(
        "GET",
        api_path("v1", "bots", bot, "channels", "webhook"),
        params={"page": page, "limit": limit},
        expect=("items", "total"),
    )
    show(
        [Column("id"), Column("version"), Column("webhook URL")],
        [[c["id"], c["version"], c["webhookUrl"]] for c in found["items"]],
        f"{found['total']} channel(s)",
    )


@channels.command("rotate-secret")
@click.argument("bot")
@click.argument("channel")
@connection
def cmd_channels_rotate_secret(bot: str, channel: str, url: str, token: str) -> None:
    """new signing secret; prints it"""
    route = api_path("v1", "bots", bot, "channels", "webhook", channel, "rotate-secret")
    click.echo(Api(url, token).call("POST", route, expect=("signingSecret",))["signingSecret"])


@click.command("send")
@click.argument("bot")
@click.argument("channel")
@click.argument("text", required=False)
@click.option("--intro", is_flag=True, help="start the conversation instead")
@click.option(
    "--session",
    "conversation",
    metavar="CONVERSATION",
    default="cli-user",
    show_default=False,
    help="the conversationId (default cli-user)",
)
@click.option(
    "--access-token",
    envvar="SWITCHBOARD_ACCESS_TOKEN",
    default="",
    show_default=False,
    help="the channel's access token (default SWITCHBOARD_ACCESS_TOKEN)",
)
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=False,
    help="how long to wait for the first reply (default 30 s)",
)
@click.option(
    "--wait",
    type=float,
    default=2.0,
    show_default=False,
    help="after a reply, stop once this many seconds pass without another (default 2 s)",
)
@connection
def send(
    bot: str,
    channel: str,
    text: str | None,
    intro: bool,
    conversation: str,
    access_token: str,
    timeout: float,
    wait: float,
    url: str,
    token: str,
) -> None:
    """send a user message to a channel and print the replies

    The replies are read from the conversation's deliveries (GET /v1/deliveries), so this
    works against any deployment, without a webhook receiver of its own.
    """
    if not access_token:
        raise SwitchboardError(
            "give the channel's access token with --access-token or SWITCHBOARD_ACCESS_TOKEN"
        )
    checked_token(access_token, "the access token (--access-token, SWITCHBOARD_ACCESS_TOKEN)")
    if text is None and not intro:
        raise SwitchboardError("give the text to send, or --intro to start the conversation")
    # Positive and finite: NaN passes no comparison.
    if not (0 < timeout <= _LONGEST and 0 <= wait <= _LONGEST):
        raise SwitchboardError(f"--timeout and --wait are seconds, at most {_LONGEST:g}")
    api = Api(url, token)
    api.call("GET", api_path("v1", "bots", bot, "channels", "webhook", channel), expect=("id",))
    query = {"endpointId": channel, "sessionId": conversation, "limit": 500}
    seen = {d["id"] for d in _deliveries(api, query)}
    message = {"introMessage": {}} if intro else {"textMessage": {"text": text}}
    api.call(
        "POST",
        api_path("v1", "channels", "webhook", channel, "messages"),
        token=access_token,
        body={"conversationId": conversation, "message": message},
        expect=("messageId",),
    )
    delivered, failed, waiting = _print_replies(api, query, seen, timeout, wait)
    if waiting:
        click.echo(f"({waiting} more on their way, not delivered yet)", err=True)
    elif not delivered and not failed:
        click.echo(f"(no reply within {timeout:g} s)", err=True)
    if failed or waiting or not delivered:
        raise click.exceptions.Exit(1)


#: The longest --timeout or --wait of `send`, in seconds.
_LONGEST = 3600.0


def _deliveries(api: Api, query: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.call(
        "GET", "/v1/deliveries", params=query, expect=("items",)
    )["items"]
    return found


def _print_replies(
    api: Api, query: dict[str, Any], seen: set[str], timeout: float, wait: float
) -> tuple[int, int, int]:
    """Print the replies as their deliveries end, in order: wait up to `timeout` for the
    first, then until `wait` passes without another. How many were delivered, how many
    were dead-lettered, and how many were still on their way at the end."""
    stop_at = time.monotonic() + timeout
    delivered = failed = 0
    fresh: list[dict[str, Any]] = []
    while time.monotonic() < stop_at:
        fresh = sorted(
            (d for d in _deliveries(api, query) if d["id"] not in seen),
            key=lambda d: d["body"]["messageCounter"],
        )
        for delivery in fresh:
            if delivery["status"] not in ("delivered", "dead"):
                break  # the later ones wait behind it, in the order the user sees them
            seen.add(delivery["id"])
            shown = _printable(_shown(delivery["body"]["message"]))
            if delivery["status"] == "delivered":
                click.echo(f"bot: {shown}")
                delivered += 1
            else:
                attempts = delivery["attempts"]
                error = attempts[-1].get("error", "") if attempts else ""
                click.echo(f"bot (not delivered: {_printable(error)}): {shown}")
                failed += 1
            stop_at = time.monotonic() + wait
        time.sleep(_POLL)
    return delivered, failed, sum(1 for d in fresh if d["id"] not in seen)


def _printable(text: str) -> str:
    """A reply's text as a terminal can show it: its line breaks kept, its other control
    and format characters escaped."""
    from switchboard.listing import printable

    return printable(text, keep_newlines=True)


def _shown(message: dict[str, Any]) -> str:
    if "text" in message:
        options = "".join(f" [{q['title']}]" for q in message.get("quick_replies") or [])
        return str(message["text"]) + options
    return json.dumps(message, ensure_ascii=False)
