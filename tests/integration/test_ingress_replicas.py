"""SWITCHBOARD_INGRESS_REPLICAS on a real master and replica (made by the test): a message is
acknowledged only once the replica has it, and answered 503 while the replica is away."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from broker.core import heartbeats, ids, keys
from switchboard.embedded_redis import free_port
from switchboard.local_servers import Server, data_node_args, wait_for
from tests.integration.stacks import OwnStack, own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis_server

#: Long enough for the test to see the web process wait on the stalled replica.
REPLICA_WAIT = 3.0


@dataclass
class Replicated:
    master: Server
    replica: Server

    def attach(self) -> None:
        self.replica.client().replicaof("127.0.0.1", self.master.port)
        wait_for(self._synced, "the replica to sync with the master")

    def _synced(self) -> bool:
        state = self.replica.client().info("replication")
        return bool(state.get("master_link_status") == "up")


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    binary = require_redis_server()
    folder = tmp_path_factory.mktemp("replicas")
    master_port = free_port()
    master = Server(
        master_port,
        folder / "master",
        # A replica syncs at once, not 5 s later.
        [*data_node_args(master_port, folder / "master"), "--repl-diskless-sync-delay", "0"],
    )
    replica_port = free_port()
    replica = Server(
        replica_port, folder / "replica", data_node_args(replica_port, folder / "replica")
    )
    made = Replicated(master, replica)
    try:
        for server in (master, replica):
            server.start(binary)
        made.attach()
        yield made
    finally:
        for server in (replica, master):
            server.stop(hard=True)


@pytest.fixture(scope="module")
def web(replicated: Replicated, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStack]:
    """A web process on the master, waiting for one replica."""
    with own_stack(
        tmp_path_factory.mktemp("replicas-stack") / "stack.log",
        REDIS_URL=f"redis://127.0.0.1:{replicated.master.port}/0",
        SWITCHBOARD_INGRESS_REPLICAS="1",
        SWITCHBOARD_INGRESS_REPLICA_WAIT=str(REPLICA_WAIT),
    ) as own:
        own.start("web")
        wait_until(lambda: _live(own), what="the web process")
        yield own


@pytest.fixture
def channel(web: OwnStack, replicated: Replicated) -> Iterator[dict[str, Any]]:
    replicated.attach()
    yield web.api.echo_channel("http://127.0.0.1:9/hook")
    replicated.replica.client().execute_command("CLIENT UNPAUSE")


def test_a_message_is_acknowledged_once_the_replica_has_it(
    web: OwnStack, replicated: Replicated, channel: dict[str, Any]
) -> None:
    # The replica reads, but takes none of the master's writes until the web process waits.
    replicated.replica.client().execute_command("CLIENT PAUSE", 60_000, "WRITE")
    answered = threading.Event()
    threading.Thread(
        target=_unpause_once_waited_on, args=(replicated, answered), daemon=True
    ).start()

    key = str(uuid.uuid4())
    answer = _send(web, channel, "user-1", key)
    on_replica = _kept(replicated.replica, channel, "user-1", key)
    answered.set()

    assert answer.status_code == 202, answer.text
    assert on_replica == (True, ["hello"])


def test_without_the_replica_a_message_is_503_and_not_queued(
    web: OwnStack, replicated: Replicated, channel: dict[str, Any]
) -> None:
    replicated.replica.client().replicaof("NO", "ONE")
    wait_until(
        lambda: replicated.master.client().info("replication")["connected_slaves"] == 0,
        what="the master to lose its replica",
    )
    key = str(uuid.uuid4())
    # A worker, whose turn must not take the message before it is taken back.
    worker = web.start("worker")
    try:
        wait_until(lambda: heartbeats.alive(web.data, "worker") > 0, what="the worker")
        refused = _send(web, channel, "user-2", key)
    finally:
        worker.stop()

    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "5"
    assert refused.json()["error"]["code"] == "unavailable"
    # Taken back from the master: the retry that the answer asks for is a new message.
    assert _kept(replicated.master, channel, "user-2", key) == (False, [])
    replicated.attach()
    again = _send(web, channel, "user-2", key)
    assert again.status_code == 202, again.text
    assert again.json()["messageId"] == _recorded_id(replicated, channel, "user-2", key)
    assert _kept(replicated.replica, channel, "user-2", key) == (True, ["hello"])


def _recorded_id(replicated: Replicated, channel: dict[str, Any], session: str, key: str) -> str:
    """The id the master recorded for the message of `key`."""
    kept = replicated.master.client().get(keys.idempotency(_conversation(channel, session), key))
    assert kept is not None
    return kept[17:]


def _send(web: OwnStack, channel: dict[str, Any], session: str, key: str) -> requests.Response:
    return requests.post(
        channel["messagesUrl"],
        json={"conversationId": session, "message": {"textMessage": {"text": "hello"}}},
        headers={"Authorization": f"Bearer {channel['accessToken']}", "Idempotency-Key": key},
        timeout=REPLICA_WAIT + 10,
    )


def _kept(
    server: Server, channel: dict[str, Any], session: str, key: str
) -> tuple[bool, list[str]]:
    """Whether `server` holds the idempotency key, and the texts of the session's inbox."""
    conversation = _conversation(channel, session)
    client = server.client()
    inbox = client.lrange(keys.conversation_inbox(conversation), 0, -1)
    has_key = client.exists(keys.idempotency(conversation, key)) == 1
    return has_key, [json.loads(item)["text"] for item in inbox]


def _conversation(channel: dict[str, Any], session: str) -> str:
    return ids.conversation_key(channel["botId"], channel["version"], channel["id"], session)


def _unpause_once_waited_on(replicated: Replicated, answered: threading.Event) -> None:
    """Let the replica take writes again once a client of the master waits for replicas (or
    the message was answered without waiting)."""
    master = replicated.master.client()
    wait_until(
        lambda: (
            answered.is_set()
            or any(
                client["cmd"] == "wait" and "b" in client["flags"]
                for client in master.client_list()
            )
        ),
        # From before the request is sent: a loaded machine may take a while to get there.
        timeout=REPLICA_WAIT * 10,
        what="the web process to wait for the replica",
    )
    replicated.replica.client().execute_command("CLIENT UNPAUSE")


def _live(own: OwnStack) -> bool:
    try:
        return requests.get(f"{own.api.base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False
