"""Redis Sentinel on this machine: a master, its replicas and three Sentinels, each a
`redis-server` process on a free loopback port, for the tests that run Switchboard on
Sentinel and fail its master over (and for trying one out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from broker.core.defaults import SENTINEL_MASTER
from switchboard.embedded_redis import free_port
from switchboard.local_servers import Server, SetUp, data_node_args, server_binary, wait_for


@dataclass
class LocalSentinel(SetUp):
    """A master with `replicas` replicas, watched by three Sentinels (quorum 2), in `folder`;
    `start()` makes them and waits until every Sentinel knows every replica and every other
    Sentinel, so that a failover can begin at once."""

    folder: Path
    replicas: int = 2
    master_name: str = SENTINEL_MASTER
    #: How long the master may be unreachable before a Sentinel holds it down (ms) ...
    down_after: int = 1000
    #: ... and how long a failover may take before another Sentinel tries again (ms).
    failover_timeout: int = 5000
    binary: str = ""
    nodes: list[Server] = field(default_factory=list)
    sentinels: list[Server] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The REDIS_URL of the master that the Sentinels name, database 0."""
        return (
            "redis+sentinel://"
            + ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
            + "/0"
        )

    def start(self) -> LocalSentinel:
        binary = self.binary = server_binary(self.binary)
        master_port = free_port()
        for number in range(1 + self.replicas):
            port = master_port if number == 0 else free_port()
            folder = self.folder / f"node-{number}"
            args = _node_args(port, folder)
            if number:
                args += ["--replicaof", "127.0.0.1", str(master_port)]
            self.nodes.append(Server(port, folder, args))
        for node in self.nodes:
            node.start(binary)
        wait_for(self._replicas_synced, "the replicas to sync with the master")
        for number in range(3):
            port = free_port()
            folder = self.folder / f"sentinel-{number}"
            folder.mkdir(parents=True, exist_ok=True)
            config = folder / "sentinel.conf"  # a Sentinel rewrites its config file
            config.write_text(self._sentinel_config(port, folder, master_port))
            self.sentinels.append(Server(port, folder, [str(config), "--sentinel"]))
        for sentinel in self.sentinels:
            sentinel.start(binary)
        self.wait_healthy()
        return self

    def stop(self) -> None:
        for server in [*self.sentinels, *self.nodes]:
            server.stop(hard=True)

    def master(self) -> Server:
        """The node that the Sentinels name master now."""
        port = self._master_port()
        return next(node for node in self.nodes if node.port == port)

    def stop_master(self, *, hard: bool = False) -> Server:
        """Stop the master (see `Server.stop`); the node stopped."""
        node = self.master()
        node.stop(hard=hard)
        return node

    def wait_master_changed(self, old: Server, timeout: float = 30.0) -> Server:
        """Until every Sentinel names a master other than `old` and that master takes
        writes; the new master."""
        wait_for(
            lambda: (
                all(port != old.port for port in self._master_ports())
                and self.master().client().set("local-sentinel:probe", "1", px=1000) is True
            ),
            "the Sentinels to promote a replica",
            timeout,
        )
        return self.master()

    def restart(self, node: Server) -> None:
        """Start a stopped node again: the Sentinels make it a replica of the master."""
        node.start(self.binary)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every Sentinel agrees on a master that takes writes, knows its live replicas
        and the other Sentinels."""
        live = sum(1 for node in self.nodes if node.process is not None)
        wait_for(
            lambda: (
                all(
                    int(state["num-slaves"]) == live - 1
                    and int(state["num-other-sentinels"]) == len(self.sentinels) - 1
                    and "s_down" not in state["flags"]
                    for state in self._states()
                )
                and len(set(self._master_ports())) == 1
                and self.master().client().info("replication")["role"] == "master"
            ),
            "the Sentinels to watch a healthy master",
            timeout,
        )

    def _master_port(self) -> int:
        return self._master_ports()[0]

    def _master_ports(self) -> list[int]:
        ports = []
        for sentinel in self.sentinels:
            _, port = sentinel.client().execute_command(
                "SENTINEL GET-MASTER-ADDR-BY-NAME", self.master_name
            )
            ports.append(int(port))
        return ports

    def _states(self) -> list[dict[str, str]]:
        return [
            sentinel.client().execute_command("SENTINEL MASTER", self.master_name)
            for sentinel in self.sentinels
        ]

    def _replicas_synced(self) -> bool:
        return all(
            node.client().info("replication").get("master_link_status") == "up"
            for node in self.nodes[1:]
        )

    def _sentinel_config(self, port: int, folder: Path, master_port: int) -> str:
        name = self.master_name
        return "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                f'dir "{folder}"',
                f'logfile "{folder / "sentinel.log"}"',
                f"sentinel monitor {name} 127.0.0.1 {master_port} 2",
                f"sentinel down-after-milliseconds {name} {self.down_after}",
                f"sentinel failover-timeout {name} {self.failover_timeout}",
                f"sentinel parallel-syncs {name} {self.replicas}",
                "",
            ]
        )


def _node_args(port: int, folder: Path) -> list[str]:
    # A replica syncs at once, not 5 s later.
    return [*data_node_args(port, folder), "--repl-diskless-sync-delay", "0"]
