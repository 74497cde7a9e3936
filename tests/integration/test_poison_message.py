"""A poison message through the real processes: a message whose bot turn fails every time (a
lone surrogate, which cannot be encoded for Redis, queued past the web's checks as older
versions let it in) is tried SWITCHBOARD_TURN_ATTEMPTS times, parked as a dead letter of
turns with its error, and the message after it gets its answer; the API and the CLI list,
replay and discard it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker.channels import channel_store
from broker.conversations import ingress
from broker.core.settings import Settings
from tests.command_line import switchboard
from tests.fakes import RecordingSender
from tests.integration.stacks import own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import ReceiverFactory, texts, wait_delivered


def test_a_poison_message_is_parked_and_the_next_one_is_answered(
    tmp_path_factory: pytest.TempPathFactory, make_receiver: ReceiverFactory
) -> None:
    require_redis()
    receiver = make_receiver()
    log: Path = tmp_path_factory.mktemp("poison") / "stack.log"
    with own_stack(log) as own:
        env = own.env(SWITCHBOARD_TURN_RETRY_DELAY="0.2")
        for role in ("web", "worker", "scheduler"):
            own.start(role, env)
        own.wait_ready()
        api = own.api
        channel = api.echo_channel(receiver.url)
        assert api.send(channel, "u1", "first").status_code == 202
        wait_delivered(receiver, 1)
        # The web refuses such text now (422); straight into the core, it is what an older
        # version let in.
        ingress.accept(
            own.data,
            Settings.from_env(env),
            RecordingSender(),
            channel=channel_store.get(own.data, channel["id"]),
            conversation_id="u1",
            message={"kind": "text", "text": "poison \udc00"},
        )
        assert api.send(channel, "u1", "after the poison").status_code == 202
        hits = wait_delivered(receiver, 2, "the answer to the message after the poison")
        assert texts(hits) == ["You said: first", "You said: after the poison"]
        listed = api.get("/v1/turn-dead-letters").json()
        assert listed["total"] == 1
        (dead,) = listed["items"]
        assert (dead["channelId"], dead["sessionId"], dead["kind"]) == (
            channel["id"],
            "u1",
            "message",
        )
        assert dead["attempts"] == 3 and dead["item"]["text"] == "poison \udc00"
        # Its answer, the text filled in, is no valid string: the message is not sent.
        assert "unable to parse raw data as a unicode string" in dead["error"]
        cli_env = {**os.environ, "REDIS_URL": own.base_env["REDIS_URL"]}
        shown = switchboard("dlq-turns", "list", env=cli_env)
        assert shown.returncode == 0 and dead["id"] in shown.stdout, shown.stderr
        assert "1 dead letter(s) of turns" in shown.stdout
        replayed = api.post(f"/v1/turn-dead-letters/{dead['id']}/replay")
        assert replayed.status_code == 202
        # Still poison: parked again, and the conversation still answers.
        again = wait_until(
            lambda: [
                item
                for item in api.get("/v1/turn-dead-letters").json()["items"]
                if item["id"] != dead["id"]
            ],
            what="the replayed message parked again",
        )
        assert api.send(channel, "u1", "still here").status_code == 202
        wait_delivered(receiver, 3)
        discarded = switchboard("dlq-turns", "discard", again[0]["id"], env=cli_env)
        assert discarded.returncode == 0, discarded.stderr
        assert api.get("/v1/turn-dead-letters").json()["total"] == 0
