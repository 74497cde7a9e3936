"""Switchboard on a Redis Cluster, against a single Redis in the same run:

    python -m bench.cluster [--workers 1,2,4] [--messages N] [--conversations C] [--runs N]

It starts a local Redis Cluster (three masters, three replicas) and a single Redis, each on
this machine, a fast local receiver, and Switchboard (web under gunicorn with 2 workers,
the scheduler, and 1, 2 then 4 worker processes) on the cluster, with Celery's transport on
the single Redis; then Switchboard with one worker on the single Redis as the yardstick.
Each is measured at the maximum rate with the echo bot (as `python -m bench`'s `max`), and
one JSON line is printed per measure, then one line of ratios to the yardstick. Redis's
commands and CPU are summed over the cluster's masters.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import IO

import redis

from bench.receiver import Receiver
from bench.scenarios import Figures, Load, measure, median, warm_up
from bench.systems import Switchboard, system_redis_server
from switchboard.embedded_redis import EmbeddedRedis
from switchboard.local_cluster import LocalCluster


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker processes, one run each")
    Load.add_options(parser)
    parser.add_argument("--runs", type=int, default=1, help="alternating runs of each")
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.workers.split(",")]
    except ValueError:
        parser.error("--workers takes whole numbers separated by commas, such as 1,2,4")
    load = Load.from_options(args)
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-cluster-") as workdir:
        results = _run(Path(workdir), load, counts, args.runs)
    print(json.dumps(_ratios(results, counts)), flush=True)
    return 0


def _run(workdir: Path, load: Load, counts: list[int], runs: int) -> dict[str, list[Figures]]:
    single = EmbeddedRedis(workdir / "redis", persistent=False, binary=system_redis_server())
    single.start()
    receiver = Receiver()
    results: dict[str, list[Figures]] = {}
    try:
        with (
            LocalCluster(workdir / "cluster", binary=system_redis_server()) as cluster,
            (workdir / "processes.log").open("ab") as log,
        ):
            single_data = redis.Redis.from_url(single.url)
            masters = [redis.Redis(port=node.port) for node in cluster.masters()]
            celery = single.url.rsplit("/", 1)[0] + "/1"
            for _ in range(runs):
                results.setdefault("single-redis", []).append(
                    _measure("single-redis", single.url, receiver, [single_data], load, log, 1)
                )
                for count in counts:
                    name = f"cluster-{count}-workers"
                    figures = _measure(
                        name, cluster.url, receiver, masters, load, log, count, celery
                    )
                    results.setdefault(name, []).append(figures)
    finally:
        single.stop()
    return results


def _measure(
    name: str,
    url: str,
    receiver: Receiver,
    servers: list[redis.Redis[bytes]],
    load: Load,
    log: IO[bytes],
    workers: int,
    celery_url: str = "",
) -> Figures:
    settings = {"SWITCHBOARD_BROKER_URL": celery_url} if celery_url else {}
    system = Switchboard(name, url, receiver.url(), log, settings, workers=workers)
    for server in servers:
        server.flushall()
    if celery_url:
        redis.Redis.from_url(celery_url).flushdb()
    system.start()
    try:
        target = system.target()
        warm_up(system, target, receiver, servers, load)
        figures = measure("max", system, target, receiver, servers, load)
        print(figures.line(), flush=True)
        return figures
    finally:
        system.stop()


def _ratios(results: dict[str, list[Figures]], counts: list[int]) -> dict[str, object]:
    def delivered(name: str) -> float:
        return median(results.get(name, []), "max", lambda f: f.delivered_per_s)

    def cpu(name: str) -> float:
        return median(results.get(name, []), "max", lambda f: f.cpu_ms_per_msg.get("total", 0))

    base = delivered("single-redis")
    out: dict[str, object] = {
        "scenario": "cluster-ratios",
        "single_redis_delivered_per_s": base,
        "single_redis_cpu_ms_per_msg": cpu("single-redis"),
    }
    for count in counts:
        name = f"cluster-{count}-workers"
        out[name] = {
            "delivered_per_s": delivered(name),
            "vs_single_redis": round(delivered(name) / base, 2) if base else None,
            "cpu_ms_per_msg": cpu(name),
        }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
