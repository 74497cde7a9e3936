"""`switchboard status`, `switchboard endpoints list|enable|disable` and `switchboard deliveries
show`: the operators' commands, working on Redis directly (REDIS_URL), like `dlq`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from broker.core import clock
from switchboard.listing import Column, printable, show

if TYPE_CHECKING:
    from broker.core.connection import Redis

P = ParamSpec("P")
R = TypeVar("R")

#: An endpoint's last error is cut to this many characters in a listing.
_ERROR_WIDTH = 60


def _json_option(command: Callable[P, R]) -> Callable[P, R]:
    return click.option("--json", "as_json", is_flag=True, help="print JSON, for scripts")(command)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _ago(at: float, now: float) -> str:
    return f"{max(now - at, 0):.0f} s ago"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value else "-"


def _cut(text: str, width: int = _ERROR_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def status(r: Redis, as_json: bool) -> int:
    """Print the overview; 1 when no worker or no scheduler is alive, as /readyz says."""
    from broker import overview
    from broker.delivery import health

    now = overview.take(r)
    # Those the overview found in trouble, so that the list agrees with the counts above it.
    troubled = health.views(
        r, [e for e, state in now.endpoint_states.items() if state != "healthy"]
    )
    ready = bool(now.workers and now.schedulers)
    if as_json:
        _echo_json({**now.as_json(), "troubledEndpoints": troubled})
        return 0 if ready else 1
    show(
        [Column("queue"), Column("depth", "depth="), Column("oldest", "oldest=")],
        [
            [name, str(depth), _seconds(now.oldest_age.get(name, 0.0))]
            for name, depth in now.queues.items()
        ],
        f"queues at {clock.iso(now.at)}",
    )
    beats = [*now.workers, *now.schedulers]
    show(
        [Column("role"), Column("process"), Column("last beat", "beat=")],
        [[b.role, b.name, _ago(b.at, now.at)] for b in beats],
        f"{len(now.workers)} worker(s), {len(now.schedulers)} scheduler(s) alive"
        + ("" if ready else "  (NOT READY)"),
    )
    click.echo(f"Redis memory: {now.redis_memory_text()}")
    if now.broker_trouble:
        click.echo(
            f"Celery's broker refused a task at {now.broker_trouble['at']} "
            f"({printable(_cut(now.broker_trouble['error']))}): retries wait for it"
        )
    show(
        _ENDPOINT_COLUMNS,
        [_endpoint_row(view) for view in troubled],
        "endpoints: "
        + ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in now.endpoints.items())
        + f"; {now.paused_conversations} conversation(s) paused for an agent",
    )
    return 0 if ready else 1


_ENDPOINT_COLUMNS = [
    Column("id"),
    Column("kind"),
    Column("state", "state="),
    Column("success", "success="),
    Column("last error", "error="),
]


def _endpoint_row(view: dict[str, Any]) -> list[str]:
    rate = view["successRate"]
    return [
        str(view["id"]),
        str(view["kind"]),
        str(view["state"]),
        "-" if rate is None else f"{rate:.0%}",
        _cut(str(view.get("disabledReason") or view.get("lastError") or "")),
    ]


def list_endpoints(r: Redis, state: str | None, as_json: bool) -> None:
    from broker.delivery import endpoint_store, health

    views = [
        view
        for view in health.views(r, endpoint_store.all_ids(r))
        if state is None or view["state"] == state
    ]
    if as_json:
        _echo_json(views)
        return
    show(_ENDPOINT_COLUMNS, [_endpoint_row(view) for view in views], f"{len(views)} endpoint(s)")


def switch_endpoint(r: Redis, endpoint_id: str, enable: bool) -> None:
    from broker.delivery import endpoint_store, health

    if enable:
        woken = health.enable(r, endpoint_id)
        click.echo(f"{printable(endpoint_id)} enabled; {woken} queue(s) resumed")
    else:
        health.disable(r, endpoint_id)
        click.echo(f"{printable(endpoint_id)} disabled; its deliveries wait until it is enabled")
    view = health.view(r, endpoint_store.load(r, endpoint_id))
    click.echo(f"state: {view['state']}")


def show_delivery(r: Redis, delivery_id: str, as_json: bool) -> None:
    from broker.delivery import records

    view = records.view(r, delivery_id)
    if as_json:
        _echo_json(view)
        return
    # Values are data (a sessionId is the channel's): each is one line, escaped as in `show`.
    for name in ("id", "status", "kind", "endpointId", "botId", "sessionId", "createdAt"):
        click.echo(f"{name + ':':<14}{printable(str(view[name]))}")
    for name in ("deliveredAt", "nextAttemptAt", "deadAt"):
        if name in view:
            click.echo(f"{name + ':':<14}{printable(str(view[name]))}")
    body = json.dumps(view["body"], ensure_ascii=False)
    click.echo(f"{'body:':<14}{printable(body)}")
    show(
        [
            Column("#"),
            Column("at"),
            Column("status", "status="),
            Column("ms", "ms="),
            Column("error", "error="),
            Column("answer", "answer="),
        ],
        [
            [
                str(n),
                attempt["at"],
                str(attempt.get("statusCode", "-")),
                str(attempt["durationMs"]),
                attempt.get("error", ""),
                _cut(" ".join(str(attempt.get("response", "")).split())),
            ]
            for n, attempt in enumerate(view["attempts"], 1)
        ],
        f"{len(view['attempts'])} attempt(s)",
    )


def commands(redis: Callable[[], Redis], on_redis: Callable[[Any], Any]) -> list[click.Command]:
    """The commands, given how the CLI reaches Redis and turns its errors into messages."""

    @click.command("status")
    @_json_option
    @on_redis
    def cmd_status(as_json: bool) -> int:
        """queues, workers, scheduler and endpoints at a glance; exits 1 when not ready"""
        return status(redis(), as_json)

    @click.group("endpoints")
    def cmd_endpoints() -> None:
        """endpoints: health, enable, disable"""

    @cmd_endpoints.command("list")
    @click.option("--state", type=click.Choice(["healthy", "failing", "circuit_open", "disabled"]))
    @_json_option
    @on_redis
    def cmd_endpoints_list(state: str | None, as_json: bool) -> None:
        """list endpoints with their state, success rate and last error"""
        list_endpoints(redis(), state, as_json)

    @cmd_endpoints.command("enable")
    @click.argument("endpoint_id")
    @on_redis
    def cmd_endpoints_enable(endpoint_id: str) -> None:
        """enable an endpoint and resume its queues"""
        switch_endpoint(redis(), endpoint_id, enable=True)

    @cmd_endpoints.command("disable")
    @click.argument("endpoint_id")
    @on_redis
    def cmd_endpoints_disable(endpoint_id: str) -> None:
        """disable an endpoint: its deliveries wait"""
        switch_endpoint(redis(), endpoint_id, enable=False)

    @click.group("deliveries")
    def cmd_deliveries() -> None:
        """deliveries and their attempts"""

    @cmd_deliveries.command("show")
    @click.argument("delivery_id")
    @_json_option
    @on_redis
    def cmd_deliveries_show(delivery_id: str, as_json: bool) -> None:
        """a delivery with every attempt: status, timing, error, the answer's first bytes"""
        show_delivery(redis(), delivery_id, as_json)

    return [cmd_status, cmd_endpoints, cmd_deliveries]
