"""A Redis Cluster on this machine: `redis-server` processes on free loopback ports, for the
tests and the benchmark that run Switchboard on a cluster (and for trying one out)."""

from __future__ import annotations

import functools
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path

import redis

from switchboard.local_servers import Server, SetUp, data_node_args, server_binary, wait_for

#: Every hash slot of a Redis Cluster.
SLOTS = 16384
#: A cluster node also listens on its port + 10,000 (the cluster bus).
BUS_OFFSET = 10_000


@dataclass
class LocalCluster(SetUp):
    """`shards` masters with `replicas` replicas each, in `folder`; `start()` makes it and
    waits until every node sees every slot served."""

    folder: Path
    shards: int = 3
    replicas: int = 1
    #: How long a master may be unreachable before its replica takes over (ms).
    node_timeout: int = 1000
    binary: str = ""
    nodes: list[Server] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The REDIS_URL of the cluster, every node a seed."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes) + "/0"

    def start(self) -> LocalCluster:
        binary = server_binary(self.binary)
        for number in range(self.shards * (1 + self.replicas)):
            port = _free_node_port()
            folder = self.folder / f"node-{number}"
            self.nodes.append(Server(port, folder, self._config(port, folder)))
        for node in self.nodes:
            node.start(binary)
        self._join()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(hard=True)

    def master_of(self, key: str) -> Server:
        """The node that serves `key` now, as a live node sees it."""
        live = self._live_node()
        slot = int(live.cluster("KEYSLOT", key))
        for start, end, (_, port, *_), *_ in live.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"no master serves slot {slot}")

    def masters(self) -> list[Server]:
        """The live nodes that serve slots now."""
        live = self._live_node()
        ports = {port for _, _, (_, port, *_), *_ in live.execute_command("CLUSTER SLOTS")}
        return [node for node in self.nodes if node.port in ports]

    def _live_node(self) -> redis.Redis[str]:
        return next(node for node in self.nodes if node.process is not None).client()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every live node says the cluster is ok."""
        wait_for(
            lambda: all(
                node.client().cluster("INFO")["cluster_state"] == "ok"
                for node in self.nodes
                if node.process is not None
            ),
            "the cluster to serve every slot",
            timeout,
        )

    def _config(self, port: int, folder: Path) -> list[str]:
        return [
            *data_node_args(port, folder),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(folder / "nodes.conf"),
            "--cluster-node-timeout", str(self.node_timeout),
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
        wait_for(
            lambda: all(
                len(node.client().cluster("NODES")) == len(self.nodes) for node in self.nodes
            ),
            "every node to know every other",
        )
        for number, node in enumerate(self.nodes[self.shards :]):
            master = masters[number % self.shards]
            wait_for(
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


def _replicates(node: Server, master_id: str) -> bool:
    try:
        node.client().execute_command("CLUSTER REPLICATE", master_id)
    except redis.ResponseError:
        return False  # the node does not know the master yet
    return True
