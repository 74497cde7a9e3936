"""The `switchboard` command."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from broker.core import defaults, logs, redaction
from broker.core.errors import Conflict, NotFound, SwitchboardError
from broker.core.settings import Settings
from switchboard import admin_cli, bot_cli, operator_cli
from switchboard.listing import printable

if TYPE_CHECKING:
    from broker.core.connection import Redis

P = ParamSpec("P")
R = TypeVar("R")


class _Commands(click.Group):
    """Lists its commands in the order they were added: the services first, then the tools."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(
    cls=_Commands,
    context_settings={
        "help_option_names": ["-h", "--help"],
        "show_default": True,
        "max_content_width": 100,
    },
)
def root() -> None:
    """The `switchboard` command."""


def _settings() -> Settings:
    return Settings.from_env()


def _operator_settings() -> Settings:
    """The settings of a command working on Redis directly: without REDIS_URL, the embedded
    Redis of a `switchboard run` using this folder's data folder, where one runs."""
    from switchboard.embedded_redis import EMBEDDED_URL_FILE
    from switchboard.run import running_in
    from switchboard.stack import data_dir

    settings = _settings()
    folder = data_dir(None)
    running = folder / EMBEDDED_URL_FILE
    if os.environ.get("REDIS_URL") or not running.is_file():
        return settings
    if not running_in(folder):
        raise SwitchboardError(
            f"REDIS_URL is not set, and the `switchboard run` that wrote {running} is not "
            "running any more: start it again, or set REDIS_URL"
        )
    url = running.read_text().strip()
    click.echo(f"switchboard: REDIS_URL is not set: using {url}, from {running}", err=True)
    # Celery's transport is that Redis too (unless SWITCHBOARD_BROKER_URL says otherwise), as
    # for the roles `switchboard run` started with this REDIS_URL.
    return Settings.from_env({**os.environ, "REDIS_URL": url})


def _redis() -> Redis:
    from broker.core.connection import connect

    settings = _operator_settings()
    return connect(settings.redis_url, sentinel_master=settings.sentinel_master)


def _on_redis(command: Callable[P, R]) -> Callable[P, R]:
    """A command working on Redis directly: Redis's errors become a message, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from broker.core.connection import REDIS_TROUBLE

        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            raise  # our output's reader went away (`| head`): not Redis's trouble
        except REDIS_TROUBLE as exc:
            raise SwitchboardError(_redis_trouble(exc)) from None

    return wrapper


def _redis_trouble(exc: Exception) -> str:
    """Redis's error in words: that it cannot be reached, or what it answered."""
    from broker.core.connection import unavailable_reason

    reason = unavailable_reason(exc)
    said = " ".join(str(exc).split())
    if len(said) > 300:  # a Sentinel's error quotes the whole client
        said = said[:299] + "…"
    if reason == "unreachable" or isinstance(exc, OSError):
        return f"cannot reach Redis (REDIS_URL): {said}"
    return f"Redis (REDIS_URL) refused: {said}"


_PORT = click.IntRange(1, 65535)
#: How many items a listing shows at most.
_LIMIT = click.IntRange(1, 10_000)


@root.command("run")
@click.option("--port", type=_PORT, default=defaults.PORT)
@click.option(
    "--data-dir", help=f"where the embedded Redis keeps its data (default ./{defaults.DATA_DIR})"
)
def cmd_run(port: int, data_dir: str | None) -> int:
    """web, a worker and the scheduler in one command"""
    from switchboard.run import run_all

    return run_all(port, data_dir)


@root.command("web")
@click.option("--host", default="0.0.0.0")
@click.option("--port", type=_PORT, default=defaults.PORT)
@click.option("--workers", type=click.IntRange(min=1), default=2)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=8,
    help="per process, for the routes off its loop",
)
def cmd_web(host: str, port: int, workers: int, threads: int) -> None:
    """the HTTP API (gunicorn)"""
    from switchboard.web_server import serve

    serve(_settings(), host=host, port=port, workers=workers, threads=threads)


@root.command("worker")
@click.option("--concurrency", type=click.IntRange(min=1), default=4)
@click.option("--pool", type=click.Choice(["threads", "prefork", "solo"]), default="threads")
@click.option("--loglevel", default="WARNING")
def cmd_worker(concurrency: int, pool: str, loglevel: str) -> None:
    """a worker: bot turns and deliveries"""
    from workers.worker import run

    run(_settings(), concurrency=concurrency, pool=pool, loglevel=loglevel)


@root.command("scheduler")
def cmd_scheduler() -> None:
    """promotes due retries and recovers dead workers' work"""
    from workers.scheduler import run

    run(_settings())


@root.command("demo")
@click.option("--keep-dir", help="keep the demo's Redis data and log here")
def cmd_demo(keep_dir: str | None) -> int:
    """a scripted conversation through the whole pipeline"""
    from switchboard.demo import run_demo

    return run_demo(keep_dir)


@root.group("token")
def cmd_token() -> None:
    """admin tokens"""


@cmd_token.command("create")
@click.option("--description", default="", show_default=False)
@click.option("--bot", help="make an API token of this bot, for its conversation actions")
@_on_redis
def cmd_token_create(description: str, bot: str | None) -> None:
    """make an admin token (or a bot's API token) and print it"""
    from broker.auth import admin_tokens, api_tokens
    from broker.core.validation import one_line

    try:
        one_line(description)
    except ValueError as exc:
        raise SwitchboardError(f"--description: {exc}") from None
    if bot is not None:
        if not bot.strip():
            raise SwitchboardError("--bot names a bot: it cannot be empty")
        click.echo(api_tokens.create(_redis(), bot, description)["token"])
    else:
        click.echo(admin_tokens.create(_redis(), description))


_BOT_OPTION = click.option("--bot", help="a bot's API tokens rather than admin tokens")


@cmd_token.command("list")
@_BOT_OPTION
@_on_redis
def cmd_token_list(bot: str | None) -> None:
    """list the admin tokens made with `token create`, or a bot's API tokens (never the
    tokens themselves)"""
    from broker.auth import admin_tokens, api_tokens
    from switchboard.listing import Column, show

    r = _redis()
    found = admin_tokens.list_all(r) if bot is None else api_tokens.list_for_bot(r, bot)
    show(
        [Column("id"), Column("created"), Column("description")],
        [[t["id"], t["createdAt"], t["description"]] for t in found],
        f"{len(found)} {'admin' if bot is None else 'API'} token(s)",
    )


@cmd_token.command("revoke")
@click.argument("token_ids", nargs=-1, required=True)
@_BOT_OPTION
@_on_redis
def cmd_token_revoke(token_ids: tuple[str, ...], bot: str | None) -> None:
    """revoke tokens by their id: they stop working at once"""
    from broker.auth import admin_tokens, api_tokens

    r = _redis()
    if bot is None:
        _each(token_ids, lambda token_id: admin_tokens.revoke(r, token_id), "revoked")
    else:
        _each(token_ids, lambda token_id: api_tokens.revoke(r, bot, token_id), "revoked")


root.add_command(admin_cli.bots)
root.add_command(bot_cli.bot)
root.add_command(admin_cli.channels)
root.add_command(admin_cli.send)


@root.group("dlq")
def cmd_dlq() -> None:
    """dead-lettered deliveries"""


def _matching(command: Callable[P, R]) -> Callable[P, R]:
    """The options that choose dead letters: `--endpoint`, `--since` and `--until`."""
    command = click.option("--until", help="dead-lettered at or before this ISO 8601 time")(command)
    command = click.option("--since", help="dead-lettered at or after this ISO 8601 time")(command)
    return click.option("--endpoint", help="only this endpoint's")(command)


def _dead_range(
    r: Redis, endpoint: str | None, since: str | None, until: str | None
) -> tuple[int | None, int | None]:
    """The `--since`/`--until` range in ms, refused as the API refuses it, and an
    `--endpoint` that is not there refused."""
    from broker.delivery import delivery_index, endpoint_store

    if endpoint is not None:
        endpoint_store.load(r, endpoint)
    return delivery_index.time_range(since, until, option="--")


@cmd_dlq.command("list")
@_matching
@click.option("--limit", type=_LIMIT, default=100)
@_on_redis
def cmd_dlq_list(endpoint: str | None, since: str | None, until: str | None, limit: int) -> None:
    """list dead letters"""
    from broker.delivery import delivery_index
    from switchboard.listing import Column, show

    r = _redis()
    since_ms, until_ms = _dead_range(r, endpoint, since, until)
    found = delivery_index.dead_letter_page(
        r, offset=0, limit=limit, endpoint_id=endpoint, since_ms=since_ms, until_ms=until_ms
    )
    shown, total = found.items[::-1], found.total
    note = f" (the newest {len(shown)} shown)" if len(shown) < total else ""
    show(
        [
            Column("id"),
            Column("dead at"),
            Column("endpoint"),
            Column("session", "session="),
            Column("attempts", "attempts="),
            Column("last", "last="),
        ],
        [_dead_letter_row(item) for item in shown],
        f"{total} dead letter(s){note}",
    )


def _dead_letter_row(item: dict[str, Any]) -> list[str]:
    attempts = item["attempts"]
    last = attempts[-1] if attempts else {}
    outcome = last.get("statusCode") or last.get("error", "")
    return [
        str(item["id"]),
        str(item.get("deadAt", "")),
        str(item["endpointId"]),
        str(item["sessionId"]),
        str(len(attempts)),
        str(outcome),
    ]


@cmd_dlq.command("replay")
@_matching
@click.argument("ids", nargs=-1)
@_on_redis
def cmd_dlq_replay(
    endpoint: str | None, since: str | None, until: str | None, ids: tuple[str, ...]
) -> None:
    """replay dead letters

    IDS are delivery ids of dead letters, or the options choose them (default: every dead
    letter); a delivery that is not dead is not sent again. Each queue takes its own back
    in the order they were made.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from broker.delivery import delivery_index, replay

    if ids and (endpoint or since or until):
        raise SwitchboardError("give delivery ids, or --endpoint/--since/--until, not both")
    r = _redis()
    if ids:
        found = list(dict.fromkeys(ids))
    else:
        since_ms, until_ms = _dead_range(r, endpoint, since, until)
        found = delivery_index.dead_letter_ids(
            r, endpoint_id=endpoint, since_ms=since_ms, until_ms=until_ms
        )
    found = replay.in_order_made(r, found)
    if not found:
        click.echo("nothing to replay")
        return
    # On standard error, so that standard output holds only the result.
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
    )
    replayed, refused = 0, []
    with bar:
        for delivery_id in bar.track(found, description="replaying"):
            try:
                replayed += replay.replay(r, delivery_id, dead_only=True)
            except (NotFound, Conflict) as exc:
                refused.append(exc.message)
    for reason in refused:
        click.echo(f"switchboard: {printable(reason)}", err=True)
    click.echo(f"{replayed} of {len(found)} deliveries queued again")
    if refused:
        raise click.exceptions.Exit(1)


@root.group("dlq-turns")
def cmd_dlq_turns() -> None:
    """dead letters of turns: messages whose bot turn kept failing"""


@cmd_dlq_turns.command("list")
@click.option("--bot", help="only this bot's")
@click.option("--limit", type=_LIMIT, default=100)
@_on_redis
def cmd_dlq_turns_list(bot: str | None, limit: int) -> None:
    """list dead letters of turns, newest first"""
    from broker.conversations import dead_turns
    from switchboard.listing import Column, show

    items, total = dead_turns.list_page(_redis(), offset=0, limit=limit, bot_id=bot)
    note = f" (the newest {len(items)} shown)" if len(items) < total else ""
    show(
        [
            Column("id"),
            Column("dead at"),
            Column("bot"),
            Column("session", "session="),
            Column("attempts", "attempts="),
            Column("error", "error="),
        ],
        [
            [i["id"], i["deadAt"], i["botId"], i["sessionId"], str(i["attempts"]), i["error"]]
            for i in items
        ],
        f"{total} dead letter(s) of turns{note}",
    )


@cmd_dlq_turns.command("replay")
@click.argument("ids", nargs=-1, required=True)
@_on_redis
def cmd_dlq_turns_replay(ids: tuple[str, ...]) -> None:
    """put messages back at the end of their conversation's inbox, for a new turn"""
    from broker.conversations import dead_turns
    from workers.celery_app import CelerySender, make_celery

    settings = _operator_settings()
    r = _redis()
    sender = CelerySender(make_celery(settings), r)
    _each(
        ids, lambda dead_turn_id: dead_turns.replay(r, settings, sender, dead_turn_id), "replayed"
    )


@cmd_dlq_turns.command("discard")
@click.argument("ids", nargs=-1, required=True)
@_on_redis
def cmd_dlq_turns_discard(ids: tuple[str, ...]) -> None:
    """forget dead letters of turns"""
    from broker.conversations import dead_turns

    r = _redis()
    _each(ids, lambda dead_turn_id: dead_turns.discard(r, dead_turn_id), "discarded")


def _each(ids: Sequence[str], act: Callable[[str], object], done: str) -> None:
    """`act` on every id, those after a refused one included (a leaked token among unknown
    ids is still revoked); a refusal is told and makes the exit code 1."""
    refused = 0
    for one in ids:
        try:
            act(one)
        except (NotFound, Conflict) as exc:
            click.echo(f"switchboard: {printable(exc.message)}", err=True)
            refused += 1
            continue
        click.echo(f"{printable(one)} {done}")
    if refused:
        raise click.exceptions.Exit(1)


for _command in operator_cli.commands(_redis, _on_redis):
    root.add_command(_command)


def _check_text(args: Sequence[str]) -> None:
    """Arguments that are not valid UTF-8 (Python holds their bytes as lone surrogates)
    are refused here, once, rather than wherever they are first written."""
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = repr(os.fsencode(arg))[2:-1]
            raise SwitchboardError(f"the argument {shown[:80]} is not valid UTF-8") from None


def _configure_logs() -> None:
    """Logging as the settings say. Settings that do not hold are told by the commands
    that use them, not by every command (`--help`, `bot validate`)."""
    try:
        settings = Settings.from_env()
    except SwitchboardError:
        settings = Settings()
    logs.configure(settings.log_level, settings.log_format)


def main(argv: Sequence[str] | None = None) -> int:
    redaction.install()
    try:
        _check_text(sys.argv[1:] if argv is None else argv)
        _configure_logs()
        code = root.main(argv, prog_name="switchboard", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SwitchboardError as exc:
        click.echo(f"switchboard: {printable(exc.message)}", err=True)
        return 2
    except click.Abort:
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`| head`): stop quietly. Standard output is
        # pointed at /dev/null so that flushing it at exit fails no more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        click.echo(f"switchboard: {exc}", err=True)
        return 1
    return int(code or 0)
