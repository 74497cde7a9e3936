"""Redis stopped and started again, Redis full (`maxmemory` with `noeviction`) and Redis
read-only, under `switchboard run` on a redis-server of the test's own:
every answer is a 202 or a `503 unavailable` with `Retry-After`, never a 500; /readyz says
what is wrong without quoting Redis; nothing acknowledged is lost; and the password in
REDIS_URL never reaches the log."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from broker.core.connection import Redis
from broker.core.settings import Settings
from switchboard.embedded_redis import free_port
from switchboard.stack import Stack
from tests.integration.stacks import ADMIN, STACK_SETTINGS, Api
from tests.polling import wait_until
from tests.prerequisites import require_redis_server
from tests.receivers import Answer, ReceiverFactory, texts, wait_delivered
from workers.celery_app import make_celery

PASSWORD = "pw-that-must-not-be-logged"


class OwnRedis:
    """A redis-server of the test's own, with append-only persistence and a password."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def start(self) -> None:
        server = require_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                server,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)),
                *("--requirepass", PASSWORD, "--appendonly", "yes", "--save", ""),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=20, what="redis-server to answer")

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: Redis writes its append-only file and exits
            self.process.wait(timeout=30)
            self.process = None


@contextlib.contextmanager
def switchboard_run(own_redis: OwnRedis, log: Path, **settings: str) -> Iterator[Api]:
    """`switchboard run` (web, a worker and the scheduler) against `own_redis`, with the
    stacks' settings and `settings`."""
    port = free_port()
    env = {
        **{k: v for k, v in STACK_SETTINGS.items() if k != "SWITCHBOARD_LOG_LEVEL"},
        "REDIS_URL": own_redis.url,
        "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SWITCHBOARD_LOG_LEVEL": "INFO",
        **settings,
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "switchboard", "run", "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        api = Api(f"http://127.0.0.1:{port}", ADMIN)
        try:
            wait_until(lambda: _ready(api), timeout=60, what="switchboard run to be ready")
            yield api
        finally:
            process.terminate()
            process.wait(timeout=60)


def _until_logged(log: Path, text: str, what: str) -> None:
    wait_until(lambda: text in log.read_text(errors="replace"), what=what)


def _ready(api: Api) -> bool:
    try:
        return api.get("/readyz").status_code == 200
    except requests.RequestException:
        return False


def _is_unavailable(answer: requests.Response) -> bool:
    if answer.status_code != 503:
        return False
    assert int(answer.headers["Retry-After"]) > 0
    error = answer.json()["error"]
    assert error["code"] == "unavailable" and PASSWORD not in error["message"]
    assert "127.0.0.1" not in error["message"]
    return True


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    made = OwnRedis(tmp_path / "redis")
    made.start()
    try:
        yield made
    finally:
        made.stop()


def test_redis_stopped_and_started_again_answers_503_and_loses_nothing(
    own_redis: OwnRedis, tmp_path: Path, make_receiver: ReceiverFactory
) -> None:
    receiver = make_receiver()
    log = tmp_path / "run.log"
    with switchboard_run(own_redis, log) as api:
        channel = api.echo_channel(receiver.url)
        assert api.send(channel, "before", "one").status_code == 202
        wait_delivered(receiver, 1)
        answers: dict[str, int] = {}
        stop = threading.Event()

        def keep_sending() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                conversation = f"c{n}"
                try:
                    answer = api.send(channel, conversation, "during")
                except requests.RequestException:
                    continue
                answers[conversation] = answer.status_code
                if answer.status_code == 503:
                    _is_unavailable(answer)

        sender = threading.Thread(target=keep_sending)
        sender.start()
        try:
            wait_until(lambda: answers, what="a first answer")
            own_redis.stop()
            wait_until(
                lambda: 503 in answers.values(), timeout=30, what="a 503 while Redis is down"
            )
            for path in ("/v1/bots", "/v1/dead-letters", "/v1/turn-dead-letters"):
                assert _is_unavailable(api.get(path)), path
            assert _is_unavailable(
                api.post("/v1/bots", json={"name": "x", "definition": {"template": "echo"}})
            )
            ready = api.get("/readyz")
            assert ready.status_code == 503 and ready.headers["Retry-After"]
            assert ready.json()["checks"]["redis"] == "unreachable"
            own_redis.start()
            wait_until(lambda: _ready(api), timeout=60, what="ready again")
            after = len(answers)
            wait_until(lambda: len(answers) > after + 3, what="messages after the restart")
        finally:
            stop.set()
            sender.join(timeout=30)
        assert set(answers.values()) <= {202, 503}, answers
        accepted = sorted(c for c, status in answers.items() if status == 202)
        assert accepted

        # Nothing acknowledged is lost: every 202 gets its reply.
        wait_until(
            lambda: set(accepted) <= {hit.body["recipient"]["id"] for hit in receiver.delivered()},
            timeout=60,
            what="a reply to every accepted message",
        )
    logged = log.read_text(errors="replace")
    assert "(from REDIS_URL)" in logged and "redis://:***@" in logged
    assert PASSWORD not in logged


def test_a_queue_whose_answer_came_while_redis_was_down_goes_on_once_redis_is_back(
    own_redis: OwnRedis, tmp_path: Path, make_receiver: ReceiverFactory
) -> None:
    """The answer to an attempt cannot be recorded while Redis is stopped: the worker hands
    the queue back as soon as Redis answers again, not when its claim (here 40 s) runs
    out, and the delivery is tried again under the same webhook-id."""
    receiver = make_receiver(lambda hit: Answer(200, delay=1.0 if hit.try_number == 1 else 0))
    log = tmp_path / "run.log"
    with switchboard_run(own_redis, log, SWITCHBOARD_CLAIM_LEASE="30") as api:
        channel = api.echo_channel(receiver.url)
        assert api.send(channel, "ann", "slow").status_code == 202
        wait_until(lambda: receiver.arrived, what="the first attempt")
        own_redis.stop()
        _until_logged(log, "left for now", "the worker to find Redis gone at the answer")
        own_redis.start()
        delivered = wait_until(
            lambda: [hit for hit in receiver.delivered() if hit.try_number == 2],
            timeout=15,
            what="the second try, well before the claim runs out",
        )
        assert delivered[0].webhook_id == receiver.delivered()[0].webhook_id


def test_a_turn_that_redis_failed_under_runs_again_once_redis_is_back(
    own_redis: OwnRedis, tmp_path: Path, make_receiver: ReceiverFactory
) -> None:
    """Redis stops while a bot turn waits for the bot's API: the turn cannot be saved, and
    its runner hands the conversation back as soon as Redis answers again, not when its
    claim (here 30 s) runs out; the turn runs again."""
    answer = threading.Event()
    slow_api = make_receiver(lambda hit: Answer(200) if answer.wait(30) else Answer(500))
    receiver = make_receiver()
    calling = {
        "version": 2,
        "startState": "call",
        "states": {
            "call": {"type": "api", "request": {"url": slow_api.url}, "next": "answered"},
            "answered": {"say": "answered"},
        },
    }
    log = tmp_path / "run.log"
    with switchboard_run(own_redis, log, SWITCHBOARD_CLAIM_LEASE="30") as api:
        bot = api.bot(calling)
        channel = api.post(
            f"/v1/bots/{bot['id']}/channels/webhook", json={"webhookUrl": receiver.url}
        ).json()
        assert api.send(channel, "ann").status_code == 202  # the intro: the start state
        wait_until(lambda: slow_api.arrived, what="the bot's API call")
        own_redis.stop()
        answer.set()
        _until_logged(log, "Redis failed under a batch", "the turn to find Redis gone")
        own_redis.start()
        delivered = wait_until(
            receiver.delivered, timeout=15, what="the reply, well before the claim runs out"
        )
        assert texts(delivered) == ["answered"]


def test_redis_out_of_memory_answers_503_and_recovers(
    own_redis: OwnRedis, tmp_path: Path, make_receiver: ReceiverFactory
) -> None:
    receiver = make_receiver()
    with switchboard_run(own_redis, tmp_path / "run.log") as api:
        channel = api.echo_channel(receiver.url)
        assert api.send(channel, "u1", "before").status_code == 202
        wait_delivered(receiver, 1)
        r = own_redis.client()
        filled = 64
        for n in range(filled):
            r.set(f"filler:{n}", "x" * 64 * 1024)
        # Full: the limit below what is used, so that no write fits whatever frees meanwhile.
        used = int(r.info("memory")["used_memory"])
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", str(used - 2 * 1024 * 1024))
        with pytest.raises(redis.exceptions.OutOfMemoryError):  # type: ignore[attr-defined]
            r.set("one more", "x")
        refused: list[requests.Response] = [
            api.send(channel, "u2", "while full"),
            api.post("/v1/bots", json={"name": "x", "definition": {"template": "echo"}}),
            api.post(
                f"/v1/bots/{channel['botId']}/channels/webhook",
                json={"webhookUrl": receiver.url},
            ),
        ]
        for answer in refused:
            assert _is_unavailable(answer), answer.text
        assert api.get("/v1/bots").status_code == 200  # reading still works
        ready = api.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "out of memory"
        r.config_set("maxmemory", "0")
        for n in range(0, filled, 500):
            r.delete(*(f"filler:{i}" for i in range(n, min(n + 500, filled))))
        wait_until(lambda: _ready(api), timeout=30, what="ready again")
        assert api.send(channel, "u3", "after").status_code == 202
        hits = wait_delivered(receiver, 2)
        assert texts(hits) == ["You said: before", "You said: after"]
        kept: Any = api.get(f"/v1/bots/{channel['botId']}/conversations").json()
        assert sorted(item["sessionId"] for item in kept["items"]) == ["u1", "u3"]


def test_a_read_only_redis_answers_503_and_recovers(
    own_redis: OwnRedis, tmp_path: Path, make_receiver: ReceiverFactory
) -> None:
    """Redis turned into a replica (of a master that is not there) takes no writes."""
    receiver = make_receiver()
    with switchboard_run(own_redis, tmp_path / "run.log") as api:
        channel = api.echo_channel(receiver.url)
        r = own_redis.client()
        r.replicaof("127.0.0.1", str(free_port()))
        assert _is_unavailable(api.send(channel, "u1", "while read-only"))
        assert _is_unavailable(
            api.post("/v1/bots", json={"name": "x", "definition": {"template": "echo"}})
        )
        assert api.get("/v1/bots").status_code == 200
        ready = api.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"] == "read-only"
        r.replicaof("NO", "ONE")
        wait_until(lambda: _ready(api), timeout=30, what="ready again")
        assert api.send(channel, "u2", "after").status_code == 202
        assert texts(wait_delivered(receiver, 1)) == ["You said: after"]


def test_a_worker_outlives_a_redis_that_refuses_writes(
    own_redis: OwnRedis, tmp_path: Path, make_receiver: ReceiverFactory
) -> None:
    """The roles run apart, with no supervisor to start a worker again: Celery's consumer
    took Redis's refusal (here NOREPLICAS; MISCONF on a full disk) as fatal and ended the
    worker, with exit code 0."""
    receiver = make_receiver()
    port = free_port()
    env = {**STACK_SETTINGS, "REDIS_URL": own_redis.url, "SWITCHBOARD_BROKER_URL": ""}
    env["SWITCHBOARD_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    with (tmp_path / "stack.log").open("ab") as log:
        stack = Stack({k: v for k, v in env.items() if v}, port=port, log=log)
        try:
            stack.start()
            stack.wait_ready()
            api = Api(stack.url, ADMIN)
            channel = api.echo_channel(receiver.url)
            r = own_redis.client()
            r.config_set("min-replicas-to-write", 1)
            assert _is_unavailable(api.send(channel, "u1", "while refused"))
            worker = stack.processes["worker"]
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=3)  # it ended within a second
            r.config_set("min-replicas-to-write", 0)
            assert worker.poll() is None
            assert api.send(channel, "u2", "after").status_code == 202
            assert texts(wait_delivered(receiver, 1)) == ["You said: after"]
        finally:
            stack.stop()


def test_a_worker_logs_its_restarts_under_a_refusing_redis_as_a_warning(
    own_redis: OwnRedis, tmp_path: Path, make_receiver: ReceiverFactory
) -> None:
    """A failover's old master refuses writes (NOREPLICAS, READONLY) for a moment: Celery's
    consumer restarts more than 5 times a second, which it logged as CRITICAL with a
    traceback ("Frequent restarts detected") while the worker recovered on its own."""
    receiver = make_receiver()
    log = tmp_path / "run.log"
    with switchboard_run(own_redis, log) as api:
        channel = api.echo_channel(receiver.url)
        r = own_redis.client()
        r.config_set("min-replicas-to-write", 1)
        _until_logged(log, "Frequent restarts detected", "the consumer's restarts")
        r.config_set("min-replicas-to-write", 0)
        celery = make_celery(Settings.from_env({**STACK_SETTINGS, "REDIS_URL": own_redis.url}))
        wait_until(lambda: celery.control.ping(timeout=0.5), timeout=30, what="a worker's pong")
        assert api.send(channel, "u1", "after").status_code == 202
        assert texts(wait_delivered(receiver, 1)) == ["You said: after"]
    logged = log.read_text(errors="replace")
    assert '"level": "CRITICAL"' not in logged
    assert "Frequent restarts detected (5 in 1s) after the broker connection was lost" in logged
