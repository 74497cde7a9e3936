"""What a failover can leave behind when it loses writes, and how the next turn mends it,
on real processes."""

from __future__ import annotations

from pathlib import Path

from broker.core import ids, keys
from tests.integration.stacks import own_stack
from tests.polling import wait_until
from tests.prerequisites import require_redis
from tests.receivers import Receiver, texts


def test_a_queue_left_with_its_head_and_no_entry_is_worked_at_the_next_turn(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The write that recorded a reply as delivered and emptied its queue was lost with the
    old master; the worker had let go and taken the queue off `sb:due` on the new one. The
    next message's turn hands the queue to the worker, which sends the head again under its
    webhook-id, then the new reply."""
    require_redis()
    with own_stack(tmp_path / "stack.log") as own:
        for role in ("web", "worker", "scheduler"):
            own.start(role)
        own.wait_ready()
        channel = own.api.echo_channel(receiver.url)
        assert own.api.send(channel, "u1", "one").status_code == 202
        wait_until(lambda: len(receiver.delivered()) == 1, what="the first reply")
        (first,) = receiver.delivered()

        key = ids.conversation_key(channel["botId"], "LIVE", channel["id"], "u1")
        record = keys.delivery(key, first.webhook_id)
        wait_until(lambda: own.data.hget(record, "status") == "delivered", what="its record")
        # What the new master holds: the head still queued, no holder, no entry.
        own.data.rpush(keys.fifo(key, channel["id"]), first.webhook_id)
        own.data.hset(record, "status", "queued")
        own.data.hdel(record, "deliveredAt")
        own.data.delete(*own.data.keys("sb:due*"))

        assert own.api.send(channel, "u1", "two").status_code == 202
        wait_until(lambda: len(receiver.delivered()) == 3, what="the head again, then the reply")
    assert texts(receiver.delivered()) == ["You said: one", "You said: one", "You said: two"]
    assert receiver.delivered()[1].webhook_id == first.webhook_id
