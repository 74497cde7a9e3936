"""Bot turns keep what they read of bots and channels until a change of them, and see a
change at the first turn after it."""

from __future__ import annotations

from broker.bots import bot_store
from broker.conversations import loading, turns
from broker.core import generation, keys
from broker.core.connection import Redis
from broker.core.settings import Settings
from tests.conversations import new_channel, queued_bodies, user_says
from tests.fakes import RecordingSender


def test_every_change_of_a_bot_gives_a_new_generation(fake_redis: Redis) -> None:
    r = fake_redis
    seen = [r.get(keys.SETTINGS_GENERATION)]
    bot = bot_store.create(r, "g", {"template": "echo"})
    seen.append(r.get(keys.SETTINGS_GENERATION))
    bot_store.publish(r, bot["id"])
    seen.append(r.get(keys.SETTINGS_GENERATION))
    bot_store.delete(r, bot["id"])
    seen.append(r.get(keys.SETTINGS_GENERATION))
    assert seen[0] is None and len(set(seen)) == 4


def test_what_a_process_knows_lasts_as_long_as_its_generation() -> None:
    known = loading.KNOWN.of("a")
    known.offloading["bot_x"] = "ep_1"
    assert loading.KNOWN.of("a").offloading == {"bot_x": "ep_1"}
    assert loading.KNOWN.of("b").offloading == {}


def test_the_generation_is_read_on_a_pipeline(fake_redis: Redis) -> None:
    r = fake_redis
    generation.move_on(r)
    pipe = r.pipeline(transaction=False)
    generation.read(pipe)
    assert pipe.execute() == [r.get(keys.SETTINGS_GENERATION)]


def test_a_published_definition_answers_the_next_message(
    fake_redis: Redis, settings: Settings
) -> None:
    r, sender = fake_redis, RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, "one")
    turns.run_pending(r, settings, sender, sender.turns[-1])
    changed = {"startState": "a", "states": [{"id": "a", "messages": [{"text": "Changed."}]}]}
    bot_store.put_draft(r, channel.bot_id, changed)
    bot_store.publish(r, channel.bot_id)
    user_says(r, settings, sender, channel, conversation_id="u2")  # it starts: an intro
    turns.run_pending(r, settings, sender, sender.turns[-1])
    texts = [b["message"]["text"] for b in queued_bodies(r, sender.turns[-1], channel.id)]
    assert texts == ["Changed."]
