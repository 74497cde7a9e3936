"""The `switchboard` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from broker.core import clock, defaults
from broker.core.connection import Redis, connect
from broker.core.errors import SwitchboardError
from broker.core.settings import Settings
from switchboard import admin_cli


def _settings() -> Settings:
    return Settings.from_env()


def _redis() -> Redis:

    settings = _settings()
    return connect(settings.redis_url, sentinel_master=settings.sentinel_master)


def cmd_run(args: argparse.Namespace) -> int:
    from switchboard.run import run_all

    return run_all(args.port, args.data_dir)


def cmd_web(args: argparse.Namespace) -> int:
    from switchboard.web_server import serve

    serve(_settings(), host=args.host, port=args.port, workers=args.workers, threads=args.threads)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.worker import run

    run(
        _settings(),
        concurrency=args.concurrency,
        queues=args.queues,
        pool=args.pool,
        loglevel=args.loglevel,
    )
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from workers.scheduler import run

    run(_settings())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from switchboard.demo import run_demo

    return run_demo(args.keep_dir)


def cmd_token_create(args: argparse.Namespace) -> int:
    import redis

    from broker.auth import admin_tokens, api_tokens

    try:
        if args.bot:
            print(api_tokens.create(_redis(), args.bot, args.description)["token"])
        else:
            print(admin_tokens.create(_redis(), args.description))
    except redis.RedisError as exc:
        raise SwitchboardError(f"cannot reach Redis (REDIS_URL): {exc}") from None
    return 0


def _time_ms(value: str | None, name: str) -> int | None:
    if not value:
        return None
    try:
        return int(clock.parse_iso(value) * 1000)
    except ValueError:
        raise SwitchboardError(
            f"--{name} must be an ISO 8601 time, like 2026-11-21T08:00:00Z"
        ) from None


def _dead_ids(args: argparse.Namespace) -> list[str]:
    from broker.delivery import delivery_index

    return delivery_index.dead_letter_ids(
        _redis(),
        endpoint_id=args.endpoint,
        since_ms=_time_ms(args.since, "since"),
        until_ms=_time_ms(args.until, "until"),
    )


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from broker.delivery import records

    found = _dead_ids(args)
    shown = records.views(_redis(), found[-args.limit :])
    for item in shown:
        last = item["attempts"][-1] if item["attempts"] else {}
        outcome = last.get("statusCode") or last.get("error", "")
        print(
            f"{item['id']}  {item.get('deadAt', '')}  {item['endpointId']}  "
            f"session={item['sessionId']}  attempts={len(item['attempts'])}  last={outcome}"
        )
    note = f" (the newest {len(shown)} shown)" if len(shown) < len(found) else ""
    print(f"{len(found)} dead letter(s){note}")
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from broker.delivery import replay
    from switchboard.progress import Progress

    r = _redis()
    found = args.ids or _dead_ids(args)
    if not found:
        print("nothing to replay")
        return 0
    replayed = 0
    with Progress(len(found), "replaying") as progress:
        for delivery_id in found:
            replayed += replay.replay(r, delivery_id)
            progress.advance()
    print(f"{replayed} of {len(found)} deliveries queued again")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="web, a worker and the scheduler in one command")
    p.add_argument("--port", type=int, default=defaults.PORT)
    p.add_argument(
        "--data-dir",
        help=f"where the embedded Redis keeps its data (default ./{defaults.DATA_DIR})",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("web", help="the HTTP API (gunicorn)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=defaults.PORT)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=8)
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("worker", help="a Celery worker for bot turns and deliveries")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--queues", default="switchboard.turns,switchboard.deliveries")
    p.add_argument(
        "--pool", default="threads", choices=["threads", "prefork", "solo", "gevent", "eventlet"]
    )
    p.add_argument("--loglevel", default="WARNING")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("scheduler", help="promotes due retries and recovers dead workers' work")
    p.set_defaults(func=cmd_scheduler)

    p = sub.add_parser("demo", help="a scripted conversation through the whole pipeline")
    p.add_argument("--keep-dir", help="keep the demo's Redis data and log here")
    p.set_defaults(func=cmd_demo)

    token = sub.add_parser("token", help="admin tokens").add_subparsers(
        dest="action", required=True
    )
    p = token.add_parser("create", help="make an admin token (or a bot's API token) and print it")
    p.add_argument("--description", default="")
    p.add_argument("--bot", help="make an API token of this bot, for its conversation actions")
    p.set_defaults(func=cmd_token_create)
    admin_cli.register(sub)

    dlq = sub.add_parser("dlq", help="dead-lettered deliveries").add_subparsers(
        dest="action", required=True
    )
    for name, func in (("list", cmd_dlq_list), ("replay", cmd_dlq_replay)):
        p = dlq.add_parser(name, help=f"{name} dead letters")
        p.add_argument("--endpoint", help="only this endpoint's")
        p.add_argument("--since", help="dead-lettered at or after this ISO 8601 time")
        p.add_argument("--until", help="dead-lettered at or before this ISO 8601 time")
        if name == "list":
            p.add_argument("--limit", type=int, default=100)
        else:
            p.add_argument("ids", nargs="*", help="delivery ids (default: every match)")
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("SWITCHBOARD_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SwitchboardError as exc:
        print(f"switchboard: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
