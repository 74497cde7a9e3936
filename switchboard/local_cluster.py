"""A Redis Cluster on this machine: `redis-server` processes on free loopback ports, for the
tests and the benchmark that run Switchboard on a cluster (and for trying one out)."""

from __future__ import annotations

import functools
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

#: Every hash slot of a Redis Cluster.
SLOTS = 16384
#: A cluster node also listens on its port + 10,000 (the cluster bus).
BUS_OFFSET = 10_000


@dataclass
class Node:
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis[str]:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def stop(self, *, hard: bool = False) -> None:
        """Stop the node: with SIGKILL when `hard`, else with SIGTERM (it saves nothing)."""
        if self.process is None:
            return
        if hard:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=30)
        self.process = None


@dataclass
class LocalCluster:
    """`shards` masters with `replicas` replicas each, in `folder`; `start()` makes it and
    waits until every node sees every slot served."""

    folder: Path
    shards: int = 3
    replicas: int = 1
    #: How long a master may be unreachable before its replica takes over (ms).
    node_timeout: int = 1000
    binary: str = ""
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The REDIS_URL of the cluster, every node a seed."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes) + "/0"

    def start(self) -> LocalCluster:
        binary = self.binary or shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("no redis-server on PATH")
        for number in range(self.shards * (1 + self.replicas)):
            node = Node(_free_node_port(), self.folder / f"node-{number}")
            node.folder.mkdir(parents=True, exist_ok=True)
            node.process = subprocess.Popen(
                [binary, *self._config(node)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.nodes.append(node)
        for node in self.nodes:
            _wait(functools.partial(_pings, node), f"redis-server on {node.address}")
        self._join()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(hard=True)

    def master_of(self, key: str) -> Node:
        """The node that serves `key` now, as a live node sees it."""
        live = next(node for node in self.nodes if node.process is not None).client()
        slot = int(live.cluster("KEYSLOT", key))
        for start, end, (_, port, *_), *_ in live.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"no master serves slot {slot}")

    def masters(self) -> list[Node]:
        """The live nodes that serve slots now."""
        live = next(node for node in self.nodes if node.process is not None).client()
        ports = {port for _, _, (_, port, *_), *_ in live.execute_command("CLUSTER SLOTS")}
        return [node for node in self.nodes if node.port in ports]

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every live node says the cluster is ok."""
        _wait(
            lambda: all(
                node.client().cluster("INFO")["cluster_state"] == "ok"
                for node in self.nodes
                if node.process is not None
            ),
            "the cluster to serve every slot",
            timeout,
        )

    def _config(self, node: Node) -> list[str]:
        return [
            "--port", str(node.port),
            "--bind", "127.0.0.1",
            "--dir", str(node.folder),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(node.folder / "nodes.conf"),
            "--cluster-node-timeout", str(self.node_timeout),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(node.folder / "redis.log"),
        ]  # fmt: skip

    def _join(self) -> None:
        first = self.nodes[0].client()
        for node in self.nodes[1:]:
            first.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        masters = self.nodes[: self.shards]
        share = SLOTS // self.shards
        for number, node in enumerate(masters):
            end = SLOTS if number == self.shards - 1 else (number + 1) * share
            node.client().execute_command("CLUSTER ADDSLOTS", *range(number * share, end))
        ids = {node.port: node.client().execute_command("CLUSTER MYID") for node in masters}
        _wait(
            lambda: all(
                len(node.client().cluster("NODES")) == len(self.nodes) for node in self.nodes
            ),
            "every node to know every other",
        )
        for number, node in enumerate(self.nodes[self.shards :]):
            master = masters[number % self.shards]
            _wait(
                functools.partial(_replicates, node, ids[master.port]),
                f"{node.address} to replicate {master.address}",
            )
        self.wait_healthy()


def _free_node_port() -> int:
    """A loopback port that is free, with its bus port free too."""
    while True:
        port = random.randrange(20_000, 65_536 - BUS_OFFSET)
        if _bindable(port) and _bindable(port + BUS_OFFSET):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pings(node: Node) -> bool:
    try:
        return bool(node.client().ping())
    except redis.ConnectionError:
        return False


def _replicates(node: Node, master_id: str) -> bool:
    try:
        node.client().execute_command("CLUSTER REPLICATE", master_id)
    except redis.ResponseError:
        return False  # the node does not know the master yet
    return True


def _wait(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")
