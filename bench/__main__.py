"""The whole path, measured: user messages into the web API, bot turns, deliveries out.

    python -m bench [--quick] [--messages N] [--conversations C] [--connections K]
                    [--rate R] [--workers W] [--runs N]
                    [--scenarios max,paced,pizza,isolation,retries,memory]

It starts a Redis of its own, a fast local receiver, and each system as real processes:
Switchboard (`switchboard web` with 2 web processes, one worker, the scheduler) and the plain
recipe (bench/plain_recipe.py, Flask under gunicorn's threads) as the yardstick, alternately,
`--runs` times. It prints one JSON line per scenario and system, then one line of ratios:
Switchboard's delivered messages a second against the plain recipe's, and against the same
run's `/healthz` requests a second under Switchboard's web server (`vs_healthz`) and under the
plain recipe's (`vs_plain_healthz`). `--quick` finishes within a minute.

Scenarios: `max` (the echo bot, as fast as messages are taken), `paced` (10, 25 and 50 %
of that rate), `pizza` (the pizza bot, bench/pizza.py), `isolation` (every tenth
conversation on a receiver that takes 1 s; the others' figures against `max`), `retries`
(a receiver failing every fifth first try), `memory` (10,000 then 90,000 more messages;
worker RSS growth). `--rate` adds a scenario paced at that many messages a second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import redis

from bench import pizza
from bench.receiver import Behaviour, Receiver
from bench.scenarios import Figures, Load, measure, median, warm_up, yardstick
from bench.systems import PlainRecipe, Switchboard, System, system_redis_server
from switchboard.embedded_redis import EmbeddedRedis

SCENARIOS = ("max", "paced", "pizza", "isolation", "retries", "memory")
PACES = (0.1, 0.25, 0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run, within a minute")
    Load.add_options(parser)
    parser.add_argument("--rate", type=float, default=0.0, help="also paced at this msg/s")
    parser.add_argument("--workers", type=int, default=1, help="Switchboard worker processes")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each system")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS[:5]))
    args = parser.parse_args()
    if args.quick:
        args.messages, args.conversations, args.runs, args.scenarios = 800, 200, 1, "max,paced"
    chosen = [name for name in args.scenarios.split(",") if name]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as workdir:
        return _run(args, chosen, Path(workdir))


def _run(args: argparse.Namespace, chosen: list[str], workdir: Path) -> int:
    server = EmbeddedRedis(workdir / "redis", persistent=False, binary=system_redis_server())
    server.start()
    receiver = Receiver()
    data = redis.Redis.from_url(server.url)
    load = Load.from_options(args)
    options = _Options(chosen, args.workers, args.rate)
    results: dict[str, list[Figures]] = {"switchboard": [], "plain": []}
    yardsticks: list[float] = []
    plain_yardsticks: list[float] = []
    try:
        with (workdir / "processes.log").open("ab") as log:
            for _ in range(args.runs):
                figures, healthz = _switchboard_run(server.url, receiver, data, load, options, log)
                results["switchboard"] += figures
                yardsticks.append(healthz)
                plain, plain_healthz = _plain_run(server.url, receiver, data, load, log)
                results["plain"] += plain
                plain_yardsticks.append(plain_healthz)
    finally:
        server.stop()
    print(json.dumps(_ratios(results, yardsticks, plain_yardsticks)), flush=True)
    return 0


def _started(system: System, data: redis.Redis[bytes]) -> System:
    data.flushall()
    system.start()
    return system


@dataclass(frozen=True)
class _Options:
    scenarios: list[str]
    workers: int
    rate: float


def _switchboard_run(
    url: str,
    receiver: Receiver,
    data: redis.Redis[bytes],
    load: Load,
    options: _Options,
    log: Any,
) -> tuple[list[Figures], float]:
    chosen = options.scenarios
    system = Switchboard("switchboard", url, receiver.url(), log, workers=options.workers)
    out: list[Figures] = []
    try:
        _started(system, data)
        target = system.target(with_slow_channel="isolation" in chosen)
        warm_up(system, target, receiver, data, load)
        best = _show(measure("max", system, target, receiver, data, load))
        out.append(best)
        half: Figures | None = None
        if "paced" in chosen:
            for share in PACES:
                figures = _paced(system, target, receiver, data, load, best, share)
                half = figures if share == 0.5 else half
                out.append(_show(figures))
        if options.rate:
            paced = Load(load.messages, load.conversations, load.connections, rate=options.rate)
            out.append(_show(measure("paced", system, target, receiver, data, paced)))
        if "pizza" in chosen:
            pizza_target = system.target(definition=pizza.definition())
            out.append(_show(measure("pizza", system, pizza_target, receiver, data, load)))
        if "isolation" in chosen:
            half = half or _paced(system, target, receiver, data, load, best, 0.5)
            out += _isolation(system, target, receiver, data, load, best, half)
        if "retries" in chosen:
            receiver.behaviour = Behaviour(fail_every=5)
            try:
                out.append(_show(measure("retries", system, target, receiver, data, load)))
            finally:
                receiver.behaviour = Behaviour()
        if "memory" in chosen:
            out += _memory(system, target, receiver, data, load)
        healthz = _healthz(system, target, load)
    finally:
        system.stop()
    return out, healthz


def _paced(
    system: System,
    target: Any,
    receiver: Receiver,
    data: redis.Redis[bytes],
    load: Load,
    best: Figures,
    share: float,
) -> Figures:
    rate = round(best.delivered_per_s * share, 1)
    paced = Load(load.messages, load.conversations, load.connections, rate=rate)
    return measure(f"paced-{int(share * 100)}%", system, target, receiver, data, paced)


def _isolation(
    system: System,
    target: Any,
    receiver: Receiver,
    data: redis.Redis[bytes],
    load: Load,
    best: Figures,
    half: Figures,
) -> list[Figures]:
    """Every tenth conversation on a receiver that takes 1 s: the others' delivered msg/s at
    full load against theirs in `max`, and their p99 at half the max rate against
    `paced-50%` (at full load, latency is the backlog the load generator builds)."""
    out = []
    half_rate = round(best.delivered_per_s * 0.5, 1)
    for name, baseline, rate in (
        ("isolation", best, 0.0),
        ("isolation-paced-50%", half, half_rate),
    ):
        slow = Load(load.messages, load.conversations, load.connections, rate, slow_every=10)
        isolated = measure(name, system, target, receiver, data, slow)
        others = isolated.extra.get("others", {})
        if others:
            # Against what the same conversations delivered in the baseline: their share.
            expected = baseline.delivered_per_s * others["share"]
            others["vs_baseline"] = {
                "delivered_per_s": round(others["delivered_per_s"] / expected, 3),
                "p99": round(others["latency_ms"]["p99"] / baseline.latency_ms["p99"], 2),
            }
        out.append(_show(isolated))
    return out


def _plain_run(
    url: str, receiver: Receiver, data: redis.Redis[bytes], load: Load, log: Any
) -> tuple[list[Figures], float]:
    """The plain recipe's figures, and `/healthz` requests a second under its server."""
    plain_url = url.rsplit("/", 1)[0] + "/2"
    system = PlainRecipe("plain", plain_url, receiver.url(), log)
    try:
        _started(system, data)
        target = system.target()
        warm_up(system, target, receiver, data, load)
        figures = [_show(measure("max", system, target, receiver, data, load))]
        return figures, _healthz(system, target, load)
    finally:
        system.stop()


def _memory(
    system: System, target: Any, receiver: Receiver, data: redis.Redis[bytes], load: Load
) -> list[Figures]:
    """Worker memory after 10,000 messages and after 100,000."""
    first = measure(
        "memory-10k",
        system,
        target,
        receiver,
        data,
        Load(10_000, load.conversations, load.connections),
    )
    rest = measure(
        "memory-100k",
        system,
        target,
        receiver,
        data,
        Load(90_000, load.conversations, load.connections),
        timeout=900,
    )
    rest.extra["worker_rss_growth"] = round(rest.rss_mb["worker"] / first.rss_mb["worker"] - 1, 3)
    return [_show(first), _show(rest)]


def _healthz(system: System, target: Any, load: Load) -> float:
    """`/healthz` requests a second under the system's web server, printed as its own line."""
    healthz = yardstick(target, 3.0, load.connections)
    line = {"scenario": "healthz", "system": system.name, "requests_per_s": healthz}
    print(json.dumps(line), flush=True)
    return healthz


def _show(figures: Figures) -> Figures:
    print(figures.line(), flush=True)
    return figures


def _ratios(
    results: dict[str, list[Figures]], yardsticks: list[float], plain_yardsticks: list[float]
) -> dict[str, Any]:
    mine, plain = results["switchboard"], results["plain"]
    delivered = median(mine, "max", lambda f: f.delivered_per_s)
    plain_delivered = median(plain, "max", lambda f: f.delivered_per_s)
    healthz = statistics.median(yardsticks) if yardsticks else 0.0
    plain_healthz = statistics.median(plain_yardsticks) if plain_yardsticks else 0.0
    return {
        "scenario": "ratios",
        "runs": len(yardsticks),
        "delivered_per_s": delivered,
        "plain_delivered_per_s": plain_delivered,
        "healthz_per_s": healthz,
        "vs_plain": round(delivered / plain_delivered, 2) if plain_delivered else None,
        "vs_healthz": round(delivered / healthz, 3) if healthz else None,
        # The same Flask /healthz under the plain recipe's server (gunicorn's threads).
        "plain_healthz_per_s": plain_healthz,
        "vs_plain_healthz": round(delivered / plain_healthz, 3) if plain_healthz else None,
        "cpu_ms_per_msg": median(mine, "max", lambda f: f.cpu_ms_per_msg.get("total", 0)),
        "plain_cpu_ms_per_msg": median(plain, "max", lambda f: f.cpu_ms_per_msg.get("total", 0)),
        "redis_cpu_ms_per_msg": median(mine, "max", lambda f: f.redis_cpu_ms_per_msg),
        "plain_redis_cpu_ms_per_msg": median(plain, "max", lambda f: f.redis_cpu_ms_per_msg),
        "redis_bytes_per_msg": median(mine, "max", partial(_extra, figure="redis_bytes_per_msg")),
        **_scenario_ratios(mine),
    }


def _extra(figures: Figures, figure: str) -> float:
    value: float = figures.extra.get(figure, 0.0)
    return value


def _others_vs_baseline(figures: Figures, figure: str) -> float:
    ratio: float = figures.extra.get("others", {}).get("vs_baseline", {}).get(figure, 0.0)
    return ratio


def _scenario_ratios(mine: list[Figures]) -> dict[str, Any]:
    """Medians of the other scenarios' figures, against `max` where the targets say so."""
    out: dict[str, Any] = {}
    cpu = median(mine, "max", lambda f: f.cpu_ms_per_msg.get("total", 0))
    commands = median(mine, "max", lambda f: f.redis_cmds_per_msg.get("total", 0))
    load_generator_cpu = partial(_extra, figure="load_generator_cpu_ms_per_msg")
    control = median(mine, "max", load_generator_cpu)
    reads = partial(_extra, figure="redis_reads_per_msg")
    max_reads = median(mine, "max", reads)
    for share in PACES:
        name = f"paced-{int(share * 100)}%"
        if any(f.scenario == name for f in mine):
            out[name] = {
                "p99_ms": median(mine, name, lambda f: f.latency_ms.get("p99", 0)),
                "cpu_vs_max": round(
                    median(mine, name, lambda f: f.cpu_ms_per_msg.get("total", 0)) / cpu, 2
                ),
                "redis_cmds_vs_max": round(
                    median(mine, name, lambda f: f.redis_cmds_per_msg.get("total", 0)) / commands,
                    2,
                ),
                # Redis's reads of its clients' sockets: about one a round trip.
                "redis_reads_vs_max": (
                    round(median(mine, name, reads) / max_reads, 2) if max_reads else None
                ),
                # The load generator does the same work per message at every pace: how much
                # more its CPU per message is here than at max is the machine's own part.
                "load_generator_cpu_vs_max": (
                    round(median(mine, name, load_generator_cpu) / control, 2) if control else None
                ),
            }
    for name, figure in (("isolation", "delivered_per_s"), ("isolation-paced-50%", "p99")):
        if any(f.scenario == name for f in mine):
            out[f"{name}_others_{figure}_vs_baseline"] = median(
                mine, name, partial(_others_vs_baseline, figure=figure)
            )
    if any(f.scenario == "pizza" for f in mine):
        out["pizza_delivered_per_s"] = median(mine, "pizza", lambda f: f.delivered_per_s)
    if any(f.scenario == "memory-100k" for f in mine):
        out["worker_rss_growth"] = median(
            mine, "memory-100k", lambda f: f.extra["worker_rss_growth"]
        )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
