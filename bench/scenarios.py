"""One benchmark scenario: a system under a load, measured from ingress to delivery."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from bench import usage
from bench.load import Plan
from bench.receiver import Receiver
from bench.systems import System, Target


@dataclass(frozen=True)
class Load:
    messages: int
    conversations: int
    connections: int = 32
    #: Messages a second, or 0 for as fast as they are accepted.
    rate: float = 0.0
    #: Every how many conversations one goes to the slow channel (0: none).
    slow_every: int = 0

    @staticmethod
    def add_options(parser: argparse.ArgumentParser) -> None:
        """The options of a whole-path benchmark's load, read back by `from_options`."""
        parser.add_argument("--messages", type=int, default=5000)
        parser.add_argument("--conversations", type=int, default=1000)
        parser.add_argument("--connections", type=int, default=32)

    @classmethod
    def from_options(cls, args: argparse.Namespace) -> Load:
        return cls(args.messages, args.conversations, args.connections)


@dataclass
class Figures:
    scenario: str
    system: str
    messages: int
    accepted_per_s: float = 0.0
    delivered_per_s: float = 0.0
    delivered: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    cpu_ms_per_msg: dict[str, float] = field(default_factory=dict)
    redis_cmds_per_msg: dict[str, Any] = field(default_factory=dict)
    redis_cpu_ms_per_msg: float = 0.0
    rss_mb: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v or v == 0})


def send(target: Target, load: Load) -> dict[str, Any]:
    """Run the load generator in its own process; returns what it measured."""
    plan = Plan(
        port=target.port,
        path=target.path,
        token=target.token,
        messages=load.messages,
        conversations=load.conversations,
        connections=load.connections,
        rate=load.rate,
        slow_every=load.slow_every,
        slow_path=target.slow_path,
        slow_token=target.slow_token,
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", json.dumps(asdict(plan))],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def yardstick(target: Target, seconds: float, connections: int = 32) -> float:
    """GET /healthz for `seconds` under the same load: requests a second."""
    plan = Plan(
        port=target.port,
        path="/healthz",
        token="",
        messages=0,
        conversations=1,
        connections=connections,
        get_for_seconds=seconds,
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", json.dumps(asdict(plan))],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return round(result["gets"] / (result["finished"] - result["started"]), 1)


def _wait_delivered(receiver: Receiver, expected: set[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if expected <= receiver.arrivals.first.keys():
            return
        time.sleep(0.05)


def median(items: list[Figures], scenario: str, pick: Callable[[Figures], float]) -> float:
    values = [pick(item) for item in items if item.scenario == scenario]
    return statistics.median(values) if values else 0.0


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(
    name: str,
    system: System,
    target: Target,
    receiver: Receiver,
    data: redis.Redis[bytes] | Sequence[redis.Redis[bytes]],
    load: Load,
    *,
    timeout: float = 300.0,
) -> Figures:
    """Send the load, wait for every accepted message's reply, and measure."""
    receiver.reset()
    pids = system.pids()
    cpu_before = {role: usage.cpu_seconds(pid) for role, pid in pids.items()}
    servers = [data] if isinstance(data, redis.Redis) else data
    redis_before = usage.redis_usage(servers)
    sent = send(target, load)
    numbers = set(range(load.messages))
    _wait_delivered(receiver, numbers, timeout)
    cpu = {role: usage.cpu_seconds(pid) - cpu_before[role] for role, pid in pids.items()}
    spent = usage.redis_delta(redis_before, usage.redis_usage(servers))
    arrivals = receiver.arrivals.first
    delivered = len(arrivals)
    figures = Figures(name, system.name, load.messages, delivered=delivered)
    elapsed = sent["finished"] - sent["started"]
    figures.accepted_per_s = round(sent["accepted"] / elapsed, 1) if elapsed else 0.0
    if delivered:
        span = max(arrivals.values()) - sent["started"]
        figures.delivered_per_s = round(delivered / span, 1)
        latencies = [(at - sent["sent_at"][n]) * 1000 for n, at in arrivals.items()]
        figures.latency_ms = _latency(latencies)
        figures.cpu_ms_per_msg = {
            "total": round(sum(cpu.values()) * 1000 / delivered, 2),
            **{role: round(seconds * 1000 / delivered, 2) for role, seconds in cpu.items()},
        }
        total_calls = sum(spent.calls.values())
        figures.redis_cmds_per_msg = {
            "total": round(total_calls / delivered, 1),
            "by_command": {
                command: round(calls / delivered, 2)
                for command, calls in sorted(spent.calls.items(), key=lambda kv: -kv[1])
                if calls / delivered >= 0.05
            },
        }
        figures.redis_cpu_ms_per_msg = round(spent.cpu_seconds * 1000 / delivered, 3)
        figures.extra["redis_reads_per_msg"] = round(spent.reads / delivered, 1)
        # What the scenario's messages left in Redis: records kept for their retention.
        figures.extra["redis_bytes_per_msg"] = round(spent.memory_bytes / delivered)
        figures.extra["load_generator_cpu_ms_per_msg"] = round(
            sent["cpu_seconds"] * 1000 / delivered, 3
        )
    figures.rss_mb = {role: usage.rss_mb(pid) for role, pid in pids.items()}
    figures.extra.update(
        refused=sent["refused"],
        repeats=receiver.arrivals.repeats,
        undelivered=len(numbers - arrivals.keys()),
    )
    if load.slow_every:
        figures.extra["others"] = _others(load, sent, arrivals)
    return figures


def _latency(latencies: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(latencies), 1),
        "p95": round(_percentile(latencies, 0.95), 1),
        "p99": round(_percentile(latencies, 0.99), 1),
    }


def _others(load: Load, sent: dict[str, Any], arrivals: dict[int, float]) -> dict[str, Any]:
    """The figures of the conversations that do not go to the slow channel."""
    mine = {n: at for n, at in arrivals.items() if (n % load.conversations) % load.slow_every != 0}
    if not mine:
        return {}
    span = max(mine.values()) - sent["started"]
    latencies = [(at - sent["sent_at"][n]) * 1000 for n, at in mine.items()]
    return {
        "share": round(len(mine) / load.messages, 3),
        "delivered_per_s": round(len(mine) / span, 1),
        "latency_ms": _latency(latencies),
    }


def warm_up(
    system: System,
    target: Any,
    receiver: Receiver,
    data: redis.Redis[bytes] | Sequence[redis.Redis[bytes]],
    load: Load,
) -> None:
    """A few hundred messages first, so that imports and connections are not measured."""
    measure(
        "warm-up",
        system,
        target,
        receiver,
        data,
        Load(min(300, load.messages), min(100, load.conversations), load.connections),
    )
