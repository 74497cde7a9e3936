"""What the processes under test cost: CPU seconds and memory per role, and Redis's commands
and CPU, read before and after a scenario."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psutil
import redis


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children (gunicorn's workers, say)."""
    total = 0.0
    for process in _tree(pid):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def rss_mb(pid: int) -> float:
    total = 0
    for process in _tree(pid):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return round(total / 2**20, 1)


@dataclass(frozen=True)
class RedisUsage:
    calls: Mapping[str, int]
    cpu_seconds: float
    #: `used_memory`: what the data kept in Redis takes.
    memory_bytes: int = 0
    #: `total_reads_processed`: the reads of its clients' sockets, about one a round trip.
    reads: int = 0


def redis_usage(servers: Sequence[redis.Redis[bytes]]) -> RedisUsage:
    """Commands and CPU so far, summed over `servers` (one Redis, or a cluster's masters)."""
    calls: Counter[str] = Counter()
    cpu_seconds = 0.0
    memory_bytes = 0
    reads = 0
    for client in servers:
        stats = client.info("commandstats")
        calls.update(
            {
                name.removeprefix("cmdstat_"): int(value["calls"])
                for name, value in stats.items()
                if isinstance(value, dict)
            }
        )
        cpu = client.info("cpu")
        cpu_seconds += float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
        memory_bytes += int(client.info("memory")["used_memory"])
        reads += int(client.info("stats")["total_reads_processed"])
    return RedisUsage(calls, cpu_seconds, memory_bytes, reads)


def redis_delta(before: RedisUsage, after: RedisUsage) -> RedisUsage:
    calls = {
        name: count - before.calls.get(name, 0)
        for name, count in after.calls.items()
        if count - before.calls.get(name, 0) > 0
    }
    return RedisUsage(
        calls,
        after.cpu_seconds - before.cpu_seconds,
        after.memory_bytes - before.memory_bytes,
        after.reads - before.reads,
    )
