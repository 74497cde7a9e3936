"""Ingress and bot turns against fakeredis: queueing, batching, fan-out."""

from __future__ import annotations

import time
import types
from dataclasses import dataclass
from typing import Any, cast

import fakeredis
import pytest
from redis.exceptions import ReadOnlyError

from broker import bot_removal
from broker.bots.actions import ActionOutcome, ApiAnswer, ApiRequest
from broker.bots.custom_actions import ActionContext
from broker.channels.channel import Channel
from broker.conversations import conversation_store, turns
from broker.core import ids, keys
from broker.core.connection import Redis
from broker.core.defaults import TURN_PUT_OFF
from broker.core.settings import Settings
from broker.delivery import fanout, health, offloading
from broker.delivery.records import queue_ref, split_due_member
from tests.conversations import ECHO, new_channel, queued_bodies, user_says
from tests.fakes import RecordingSender


def test_only_the_first_message_of_an_idle_conversation_enqueues_a_turn(
    fake_redis: Redis, settings: Settings
) -> None:
    sender = RecordingSender()
    channel = new_channel(fake_redis, settings)
    for n in range(5):
        assert user_says(fake_redis, settings, sender, channel, f"m{n}").queued
    conversation_key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    assert sender.turns == [conversation_key]
    assert fake_redis.llen(keys.conversation_inbox(conversation_key)) == 5
    assert fake_redis.zscore(keys.TURNS, conversation_key) is not None


def test_on_one_redis_the_ingress_script_puts_a_new_turn_on_the_ready_list_itself(
    fake_redis: Redis, settings: Settings
) -> None:
    sender = RecordingSender()
    sender.ready_list = keys.READY  # as the workers' sender on one Redis
    channel = new_channel(fake_redis, settings)
    for n in range(3):
        assert user_says(fake_redis, settings, sender, channel, f"m{n}").queued
    conversation_key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    assert fake_redis.lrange(keys.READY, 0, -1) == [conversation_key]
    assert sender.turns == []


def test_a_repeated_idempotency_key_is_acknowledged_but_not_queued(
    fake_redis: Redis, settings: Settings
) -> None:
    sender = RecordingSender()
    channel = new_channel(fake_redis, settings)
    first = user_says(fake_redis, settings, sender, channel, "hi", idempotency_key="k1")
    again = user_says(fake_redis, settings, sender, channel, "hi", idempotency_key="k1")
    assert first.queued and not again.queued
    assert again.message_id == first.message_id
    conversation_key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    assert fake_redis.llen(keys.conversation_inbox(conversation_key)) == 1


def test_one_turn_drains_the_inbox_in_order_and_fans_out_to_one_queue(
    fake_redis: Redis, settings: Settings
) -> None:
    sender = RecordingSender()
    channel = new_channel(fake_redis, settings)
    for n in range(3):
        user_says(fake_redis, settings, sender, channel, f"m{n}")
    conversation_key = sender.turns[0]

    assert turns.run_pending(fake_redis, settings, sender, conversation_key) == 3

    bodies = queued_bodies(fake_redis, conversation_key, channel.id)
    assert [b["message"]["text"] for b in bodies] == [
        "You said: m0",
        "You said: m1",
        "You said: m2",
    ]
    assert [b["messageCounter"] for b in bodies] == [1, 2, 3]
    (handed,) = sender.deliveries
    assert split_due_member(handed)[0] == queue_ref(conversation_key, channel.id)
    assert fake_redis.llen(keys.conversation_inbox(conversation_key)) == 0
    assert not fake_redis.exists(keys.conversation_pending(conversation_key))
    assert fake_redis.zscore(keys.TURNS, conversation_key) is None
    assert fake_redis.zscore(keys.DUE, handed) is not None
    assert len(fake_redis.lrange(keys.conversation_transcript(conversation_key), 0, -1)) == 6


def test_a_message_after_the_turn_ended_wakes_a_new_turn_and_counters_go_on(
    fake_redis: Redis, settings: Settings
) -> None:
    sender = RecordingSender()
    channel = new_channel(fake_redis, settings)
    user_says(fake_redis, settings, sender, channel, "a")
    conversation_key = sender.turns[0]
    turns.run_pending(fake_redis, settings, sender, conversation_key)
    user_says(fake_redis, settings, sender, channel, "b")
    assert sender.turns == [conversation_key, conversation_key]
    turns.run_pending(fake_redis, settings, sender, conversation_key)
    counters = [
        b["messageCounter"] for b in queued_bodies(fake_redis, conversation_key, channel.id)
    ]
    assert counters == [1, 2]
    # The queue was not empty when the second reply joined it: its worker goes on to it.
    (handed,) = sender.deliveries
    assert split_due_member(handed)[0] == queue_ref(conversation_key, channel.id)


def test_a_turn_held_by_another_worker_is_left_alone(fake_redis: Redis, settings: Settings) -> None:
    sender = RecordingSender()
    channel = new_channel(fake_redis, settings)
    user_says(fake_redis, settings, sender, channel, "a")
    conversation_key = sender.turns[0]
    fake_redis.set(keys.conversation_lock(conversation_key), "someone-else", px=5000)
    assert turns.run_pending(fake_redis, settings, sender, conversation_key) == 0
    assert fake_redis.llen(keys.conversation_inbox(conversation_key)) == 1


def test_a_deleted_conversation_s_messages_are_dropped_quietly(
    fake_redis: Redis, settings: Settings
) -> None:
    sender = RecordingSender()
    channel = new_channel(fake_redis, settings)
    user_says(fake_redis, settings, sender, channel, "a")
    conversation_key = sender.turns[0]
    fake_redis.delete(keys.conversation_meta(conversation_key))
    assert turns.run_pending(fake_redis, settings, sender, conversation_key) == 1
    assert not fake_redis.exists(keys.conversation_pending(conversation_key))


def test_a_message_that_came_while_an_agent_held_the_conversation_still_gets_its_turn(
    fake_redis: Redis, settings: Settings
) -> None:
    sender = RecordingSender()
    channel = new_channel(fake_redis, settings)
    user_says(fake_redis, settings, sender, channel, "a")
    conversation_key = sender.turns[0]
    turns.run_pending(fake_redis, settings, sender, conversation_key)
    found = conversation_store.find(fake_redis, channel.bot_id, "LIVE", "u1")

    with conversation_store.locked(fake_redis, settings, sender, found):
        user_says(fake_redis, settings, sender, channel, "b")
        # The turn this woke finds the conversation held, and gives up.
        assert turns.run_pending(fake_redis, settings, sender, conversation_key) == 0

    assert sender.turns == [conversation_key, conversation_key, conversation_key]
    assert turns.run_pending(fake_redis, settings, sender, conversation_key) == 1


class KitchenActions:
    """Answers every API call with an order number; each call takes `took` seconds of the
    turn's clock."""

    def __init__(self, clock: list[float], took: float) -> None:
        self.clock = clock
        self.took = took
        self.calls: list[ApiRequest] = []

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        self.calls.append(request)
        self.clock[0] += self.took
        return ApiAnswer(201, {"id": f"K{len(self.calls)}"})

    def run_action(self, name: str, context: ActionContext, timeout: float) -> ActionOutcome:
        return ActionOutcome(error="none here")


ORDERING: dict[str, Any] = {
    "version": 2,
    "startState": "wait",
    "fallbackState": "order",
    "states": {
        "wait": {},
        "order": {
            "type": "api",
            "request": {"method": "POST", "url": "https://kitchen.example/orders"},
            "save": {"order.id": "id"},
            "next": "placed",
        },
        "placed": {"say": "Order {{order.id}}"},
    },
}


def test_the_turn_hands_the_engine_its_action_interface_and_commits_before_the_lock_runs_out(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [0.0]
    monkeypatch.setattr(
        "broker.conversations.turns.time", types.SimpleNamespace(monotonic=lambda: clock[0])
    )
    commits: list[int] = []
    commit = fanout.commit_turns

    def counted(*args: Any, **kwargs: Any) -> Any:
        commits.extend(turn.trim for turn in args[2])
        return commit(*args, **kwargs)

    monkeypatch.setattr(fanout, "commit_turns", counted)
    sender = RecordingSender()
    channel = new_channel(fake_redis, settings, ORDERING)
    for n in range(3):
        user_says(fake_redis, settings, sender, channel, f"pizza {n}")
    actions = KitchenActions(clock, took=settings.claim_lease / 2 + 1)
    conversation_key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")

    assert turns.run_pending(fake_redis, settings, sender, conversation_key, actions) == 3

    assert [call.url for call in actions.calls] == ["https://kitchen.example/orders"] * 3
    bodies = queued_bodies(fake_redis, conversation_key, channel.id)
    assert [body["message"]["text"] for body in bodies] == ["Order K1", "Order K2", "Order K3"]
    assert commits == [1, 1, 1]  # each slow message committed alone, the lock renewed between


class WatchingKitchen(KitchenActions):
    """Notes, at each call, the replies the conversation had saved for sending."""

    def __init__(self, r: Redis, conversation_key: str, channel_id: str) -> None:
        super().__init__([0.0], took=0.0)
        self.r = r
        self.conversation_key = conversation_key
        self.channel_id = channel_id
        self.saved_before: list[list[str]] = []

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        bodies = queued_bodies(self.r, self.conversation_key, self.channel_id)
        self.saved_before.append([body["message"]["text"] for body in bodies])
        return super().call_api(request)


ORDERING_OR_GREETING: dict[str, Any] = {
    **ORDERING,
    "fallbackState": "greet",
    "routes": [{"match": "pizza", "next": "order"}],
    "states": {**ORDERING["states"], "greet": {"say": "Hi"}},
}


def test_answers_to_earlier_messages_are_saved_before_a_later_one_waits_on_its_api(
    fake_redis: Redis, settings: Settings
) -> None:
    """Without it, the greeting waited in the turn until the kitchen had answered the order."""
    sender = RecordingSender()
    channel = new_channel(fake_redis, settings, ORDERING_OR_GREETING)
    for text in ("hello", "hi again", "pizza", "pizza"):
        user_says(fake_redis, settings, sender, channel, text)
    conversation_key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    kitchen = WatchingKitchen(fake_redis, conversation_key, channel.id)

    assert turns.run_pending(fake_redis, settings, sender, conversation_key, kitchen) == 4

    assert kitchen.saved_before == [["Hi", "Hi"], ["Hi", "Hi", "Order K1"]]
    bodies = queued_bodies(fake_redis, conversation_key, channel.id)
    assert [body["message"]["text"] for body in bodies] == ["Hi", "Hi", "Order K1", "Order K2"]
    assert [body["messageCounter"] for body in bodies] == [1, 2, 3, 4]
    transcript = fake_redis.lrange(keys.conversation_transcript(conversation_key), 0, -1)
    assert len(transcript) == 8  # each user message once, with its answer


class LeaseEatingActions(KitchenActions):
    """Each call takes more than half a claim lease off every lock of the conversations it
    is given, as that much time would; notes whether each call's conversations were all
    still held."""

    def __init__(self, r: Redis, conversation_keys: list[str], lease: float) -> None:
        super().__init__([0.0], took=0.0)
        self.r = r
        self.conversation_keys = conversation_keys
        self.eaten_ms = int(lease * 1000 / 2) + 1000
        self.all_held: list[bool] = []

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        locks = [keys.conversation_lock(key) for key in self.conversation_keys]
        self.all_held.append(all(self.r.exists(lock) for lock in locks))
        for lock in locks:
            left = self.r.pttl(lock)
            if left > self.eaten_ms:
                self.r.pexpire(lock, left - self.eaten_ms)
            else:
                self.r.delete(lock)
        return super().call_api(request)


def test_a_batch_renews_its_locks_before_each_wait_outside_so_no_call_is_made_twice(
    fake_redis: Redis, settings: Settings
) -> None:
    """Without the renewal, the third conversation's lease ran out while the first two
    called their API: another runner would take it and call again."""
    sender, channel, conversation_keys = _said_by(
        fake_redis, settings, ["u1", "u2", "u3"], "pizza", ORDERING
    )
    actions = LeaseEatingActions(fake_redis, conversation_keys, settings.claim_lease)

    assert turns.run_batch(fake_redis, settings, sender, conversation_keys, actions=actions) == 3

    assert actions.all_held == [True, True, True]
    for key in conversation_keys:
        (body,) = queued_bodies(fake_redis, key, channel.id)
        assert body["message"]["text"].startswith("Order K")


def _one_waits_between_two(
    r: Redis, settings: Settings, sender: RecordingSender
) -> tuple[Channel, Channel, tuple[str, str, str]]:
    """An echo conversation, one whose turn calls the kitchen's API, and another echo one,
    each with a message waiting: their channels, and their keys in that order."""
    echo = new_channel(r, settings)
    ordering = new_channel(r, settings, ORDERING)
    user_says(r, settings, sender, echo, "before", conversation_id="a")
    user_says(r, settings, sender, ordering, "pizza", conversation_id="b")
    user_says(r, settings, sender, echo, "after", conversation_id="c")
    return (
        echo,
        ordering,
        (
            ids.conversation_key(echo.bot_id, "LIVE", echo.id, "a"),
            ids.conversation_key(ordering.bot_id, "LIVE", ordering.id, "b"),
            ids.conversation_key(echo.bot_id, "LIVE", echo.id, "c"),
        ),
    )


def test_a_turn_that_waits_outside_hands_the_rest_of_its_batch_on(
    fake_redis: Redis, settings: Settings
) -> None:
    """`go_away`: what follows the waiting turn, and what ran before it, is committed by
    whoever the runner gives it to, without waiting for the call."""
    sender = RecordingSender()
    echo, ordering, (before, waits, after) = _one_waits_between_two(fake_redis, settings, sender)
    handed: list[int] = []

    class Waiting(KitchenActions):
        def call_api(self, request: ApiRequest) -> ApiAnswer:
            # The rest was committed while this call still waits.
            assert [b["message"]["text"] for b in queued_bodies(fake_redis, before, echo.id)] == [
                "You said: before"
            ]
            assert [b["message"]["text"] for b in queued_bodies(fake_redis, after, echo.id)] == [
                "You said: after"
            ]
            return super().call_api(request)

    def go_away(split: Any) -> bool:
        handed.append(split()())
        return True

    processed = turns.run_batch(
        fake_redis,
        settings,
        sender,
        [before, waits, after],
        actions=Waiting([0.0], took=0.0),
        go_away=go_away,
    )
    assert (processed, handed) == (1, [2])
    (body,) = queued_bodies(fake_redis, waits, ordering.id)
    assert body["message"]["text"] == "Order K1"


def test_a_turn_about_to_wait_outside_with_no_runner_to_spare_is_put_off(
    fake_redis: Redis, settings: Settings
) -> None:
    """`go_away` refused (too many runners away): the waiting turn stops before its call and
    comes back a moment later, let go; the rest of the batch goes on at once. Before, the
    runner waited in place, and every conversation behind it on the ready list with it."""
    sender = RecordingSender()
    echo, ordering, (before, waits, after) = _one_waits_between_two(fake_redis, settings, sender)
    kitchen = KitchenActions([0.0], took=0.0)

    def too_many(split: Any) -> bool:
        raise turns.TooManyAway()

    started = time.time()
    processed = turns.run_batch(
        fake_redis, settings, sender, [before, waits, after], actions=kitchen, go_away=too_many
    )

    assert processed == 2 and kitchen.calls == []
    for key, said in ((before, "before"), (after, "after")):
        assert [b["message"]["text"] for b in queued_bodies(fake_redis, key, echo.id)] == [
            f"You said: {said}"
        ]
    assert queued_bodies(fake_redis, waits, ordering.id) == []
    assert fake_redis.llen(keys.conversation_inbox(waits)) == 1
    assert not fake_redis.exists(keys.conversation_lock(waits))
    due = fake_redis.zscore(keys.TURNS, waits)
    assert due is not None and started + TURN_PUT_OFF <= due <= time.time() + TURN_PUT_OFF

    assert turns.run_batch(fake_redis, settings, sender, [waits], actions=kitchen) == 1
    (body,) = queued_bodies(fake_redis, waits, ordering.id)
    assert body["message"]["text"] == "Order K1"


#: Hands a conversation to an agent on "human"; when that fails, opens a ticket through an
#: API instead.
HANDOVER_OR_TICKET: dict[str, Any] = {
    "version": 2,
    "startState": "greet",
    "fallbackState": "greet",
    "offloadFailedState": "ticket",
    "routes": [{"match": "human", "exact": True, "next": "human"}],
    "states": {
        "greet": {"say": "Hi"},
        "human": {"type": "offload", "say": "Connecting you", "payload": {}},
        "ticket": {
            "type": "api",
            "request": {"method": "POST", "url": "https://desk.example/tickets"},
            "save": {"ticket": "id"},
            "next": "opened",
        },
        "opened": {"say": "Ticket {{ticket}}"},
    },
}


def _handing_over(
    r: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> tuple[Channel, RecordingSender]:
    monkeypatch.setattr(offloading, "health_check", lambda *args: None)
    channel = new_channel(r, settings, HANDOVER_OR_TICKET)
    offloading.configure(r, settings, channel.bot_id, "http://127.0.0.1:9/desk", "vt-123")
    return channel, RecordingSender()


def test_a_later_message_whose_failed_handover_calls_an_api_is_answered_once(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offload to a disabled endpoint fails at once, to a state that calls an API: the
    call is made before anything of the message is kept, so that the answers before it
    are saved first and the message is answered once. Before, its "Connecting you" and its
    transcript items were saved twice."""
    channel, sender = _handing_over(fake_redis, settings, monkeypatch)
    health.disable(fake_redis, offloading.endpoint_id(channel.bot_id))
    for text in ("hello", "human"):
        user_says(fake_redis, settings, sender, channel, text)
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    kitchen = KitchenActions([0.0], took=0.0)

    assert turns.run_pending(fake_redis, settings, sender, key, kitchen) == 2

    texts = [body["message"]["text"] for body in queued_bodies(fake_redis, key, channel.id)]
    assert texts == ["Hi", "Connecting you", "Ticket K1"] and len(kitchen.calls) == 1
    assert len(fake_redis.lrange(keys.conversation_transcript(key), 0, -1)) == 5


@pytest.mark.parametrize("too_many_away", [False, True])
def test_a_signal_whose_failed_handover_calls_an_api_is_settled_in_any_batch(
    fake_redis: Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    too_many_away: bool,
) -> None:
    """An offload with no answer in time fails, to a state that calls an API. Before, the
    call failed the turn when the batch's conversation before it had answered two messages
    (or when no runner could wait), and the signal ended parked."""
    settings = settings.with_changes(offload_timeout=0.5)
    channel, sender = _handing_over(fake_redis, settings, monkeypatch)
    user_says(fake_redis, settings, sender, channel, "human")
    waiting = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")
    assert turns.run_pending(fake_redis, settings, sender, waiting) == 1
    conversation_store.give_signal(
        fake_redis, settings, sender, waiting, {"kind": "timer", "name": "offload"}
    )
    for text in ("a", "b"):
        user_says(fake_redis, settings, sender, channel, text, conversation_id="u2")
    talking = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u2")
    kitchen = KitchenActions([0.0], took=0.0)

    def go_away(split: Any) -> bool:
        if too_many_away:
            raise turns.TooManyAway()
        return False

    turns.run_batch(
        fake_redis, settings, sender, [talking, waiting], actions=kitchen, go_away=go_away
    )

    assert len(kitchen.calls) == 1
    texts = [body["message"]["text"] for body in queued_bodies(fake_redis, waiting, channel.id)]
    assert texts == ["Connecting you", "Ticket K1"]
    assert fake_redis.zcard(keys.DEAD_TURNS) == 0


def test_a_turn_whose_conversation_is_removed_under_it_leaves_nothing_behind(
    fake_redis: Redis, settings: Settings
) -> None:
    """Its commit finds the lock gone and counts the turn as lost: before, that count
    brought the conversation's meta back, alone and with no expiry."""
    channel = new_channel(fake_redis, settings, ORDERING)
    sender = RecordingSender()
    user_says(fake_redis, settings, sender, channel, "pizza")
    key = ids.conversation_key(channel.bot_id, "LIVE", channel.id, "u1")

    class Removing(KitchenActions):
        def call_api(self, request: ApiRequest) -> ApiAnswer:
            bot_removal.remove_channel(fake_redis, channel.bot_id, channel.id)
            return super().call_api(request)

    turns.run_pending(fake_redis, settings, sender, key, Removing([0.0], took=0.0))

    assert list(fake_redis.scan_iter(f"sb:{{c:{key}}}*")) == []


def test_a_batch_renews_its_locks_between_turns_that_ran_long(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn that holds the runner without waiting outside (a definition's regexes at their
    limits) must not let the locks of the conversations after it run out: before, the
    others of its batch lost theirs, each loss counted against their messages."""
    clock = [0.0]
    monkeypatch.setattr(
        "broker.conversations.turns.time", types.SimpleNamespace(monotonic=lambda: clock[0])
    )
    sender, channel, (first, second) = _said_by(fake_redis, settings, ["u1", "u2"])
    second_lock = keys.conversation_lock(second)
    nearly_out_ms = int(settings.claim_lease * 1000 / 10)
    left_ms: list[int] = []
    run = turns._Batch.run

    def timed(batch: Any, conversation_key: str, work: Any) -> None:
        if conversation_key == first:
            clock[0] += settings.claim_lease / 2  # the turn took half a lease ...
            fake_redis.pexpire(second_lock, nearly_out_ms)  # ... the next one's nearly ran out
        else:
            left_ms.append(fake_redis.pttl(second_lock))
        run(batch, conversation_key, work)

    monkeypatch.setattr(turns._Batch, "run", timed)

    assert turns.run_batch(fake_redis, settings, sender, [first, second]) == 2

    assert left_ms and left_ms[0] > nearly_out_ms
    (body,) = queued_bodies(fake_redis, second, channel.id)
    assert body["message"]["text"] == "You said: hi"


def test_a_pass_sorts_its_conversations_by_what_their_commit_said() -> None:
    def done(*, lost: bool = False, ended: bool = False) -> fanout.Committed:
        return fanout.Committed(lost=lost, ended=ended, claimed={}, stale=[])

    committed = {
        "ended": done(ended=True),
        "more": done(),
        "lost": done(lost=True),
        "put_off": done(),
        "lost_put_off": done(lost=True),
    }
    used = {"ended": 2, "more": 3, "lost": 5, "put_off": 0, "lost_put_off": 0}
    outcome = turns._PassOutcome.of(
        committed, used, ["put_off", "lost_put_off", "unsaved"], ["failed"]
    )
    assert outcome.processed == 5  # a lost turn's messages wait for the next try
    assert outcome.ended == ["ended"]
    assert outcome.put_off == ["put_off", "unsaved"]
    assert outcome.remaining == ["more", "failed"]


def test_a_turn_run_again_from_the_same_state_makes_the_same_delivery_ids(
    fake_redis: Redis, settings: Settings
) -> None:
    """A master that fails over may lose a turn's commit after its replies went out: the
    turn runs again, and its replies go under the ids they had, which receivers know."""
    sender = RecordingSender()
    channel = new_channel(fake_redis, settings)
    for text in ("one", "two"):
        user_says(fake_redis, settings, sender, channel, text)
    conversation_key = sender.turns[0]
    replica = _replica_of(fake_redis)  # what the master held before the turn

    def ids_of_a_turn(r: Redis) -> list[str]:
        turns.run_pending(r, settings, RecordingSender(), conversation_key)
        return r.lrange(keys.fifo(conversation_key, channel.id), 0, -1)

    first = ids_of_a_turn(fake_redis)
    assert len(first) == 2
    assert ids_of_a_turn(replica) == first
    # The next turn makes new ones.
    user_says(fake_redis, settings, sender, channel, "three")
    later = ids_of_a_turn(fake_redis)
    assert len(later) == 3 and later[:2] == first


def test_a_reply_to_another_message_from_the_same_state_has_another_id(
    fake_redis: Redis, settings: Settings
) -> None:
    """The master acknowledged a message, answered it, and was replaced before its replica
    had any of it: the next message's reply, made from the same state, must not take the
    lost one's id, or receivers that saw that id would drop it."""
    conversation = _answered(fake_redis, settings)
    replica = _replica_of(fake_redis)
    for r in (fake_redis, replica):
        r.delete(conversation.fifo)
    conversation.say(fake_redis, settings, "lost with the master")
    conversation.say(replica, settings, "sent after the failover")
    (lost,) = fake_redis.lrange(conversation.fifo, 0, -1)
    (later,) = replica.lrange(conversation.fifo, 0, -1)
    assert lost != later


def test_two_conversations_that_began_alike_make_other_delivery_ids(
    fake_redis: Redis, settings: Settings
) -> None:
    sender, channel, conversation_keys = _said_by(fake_redis, settings, ["u1", "u2"])
    made = []
    for key in conversation_keys:
        turns.run_pending(fake_redis, settings, sender, key)
        made.append(fake_redis.lrange(keys.fifo(key, channel.id), 0, -1)[0][-16:])
    assert made[0] != made[1]


def copy_all(source: Redis, target: Redis) -> None:
    for key in source.keys("*"):
        kind = source.execute_command("TYPE", key)
        if kind == "string":
            target.set(key, source.get(key) or "")
        elif kind == "hash":
            target.hset(key, mapping=dict(source.hgetall(key).items()))
        elif kind == "list":
            target.rpush(key, *source.lrange(key, 0, -1))
        elif kind == "set":
            target.sadd(key, *source.smembers(key))
        else:
            target.zadd(key, dict(source.zrange(key, 0, -1, withscores=True)))


def test_a_queue_left_with_no_entry_and_no_holder_goes_to_a_worker_at_the_next_turn(
    fake_redis: Redis, settings: Settings
) -> None:
    """A failover lost the write that had emptied a queue (its head was delivered, and the
    worker let go and took its entry off `sb:due`): the queue holds deliveries that no one
    holds or will look at. The next turn that adds to it hands it to a worker."""
    conversation = _answered(fake_redis, settings)
    ref = queue_ref(conversation.conversation_key, conversation.channel.id)
    fake_redis.delete(keys.fifo_lock(conversation.conversation_key, conversation.channel.id))
    fake_redis.delete(keys.DUE)
    conversation.sender.deliveries.clear()

    conversation.say(fake_redis, settings, "two")
    assert [split_due_member(member)[0] for member in conversation.sender.deliveries] == [ref]
    assert [split_due_member(m)[0] for m in fake_redis.zrange(keys.DUE, 0, -1)] == [ref]


def test_a_queue_waiting_for_a_retry_is_left_to_its_entry(
    fake_redis: Redis, settings: Settings
) -> None:
    conversation = _answered(fake_redis, settings)
    key = conversation.conversation_key
    (head,) = fake_redis.lrange(conversation.fifo, 0, -1)
    fake_redis.hset(keys.delivery(key, head), "nextAttemptAt", time.time() + 60)
    fake_redis.delete(keys.fifo_lock(key, conversation.channel.id))
    entries = fake_redis.zrange(keys.DUE, 0, -1)
    conversation.sender.deliveries.clear()

    conversation.say(fake_redis, settings, "two")
    assert conversation.sender.deliveries == []
    assert fake_redis.zrange(keys.DUE, 0, -1) == entries


@dataclass
class _Answered:
    """A channel whose user (u1) said something, and whose turn answered it."""

    sender: RecordingSender
    channel: Channel
    conversation_key: str

    @property
    def fifo(self) -> str:
        return keys.fifo(self.conversation_key, self.channel.id)

    def say(self, r: Redis, settings: Settings, text: str) -> None:
        """`text` from the user, and the turn that answers it, on `r`."""
        user_says(r, settings, self.sender, self.channel, text)
        turns.run_pending(r, settings, self.sender, self.conversation_key)


def _answered(r: Redis, settings: Settings, text: str = "one") -> _Answered:
    sender = RecordingSender()
    channel = new_channel(r, settings)
    user_says(r, settings, sender, channel, text)
    answered = _Answered(sender, channel, sender.turns[0])
    turns.run_pending(r, settings, sender, answered.conversation_key)
    return answered


def _said_by(
    r: Redis,
    settings: Settings,
    users: list[str],
    text: str = "hi",
    definition: dict[str, Any] = ECHO,
) -> tuple[RecordingSender, Channel, list[str]]:
    """A channel of a new bot on which each of `users` said `text`, not answered yet: the
    sender the messages went through, the channel, and the users' conversation keys."""
    sender = RecordingSender()
    channel = new_channel(r, settings, definition)
    for user in users:
        user_says(r, settings, sender, channel, text, conversation_id=user)
    return (
        sender,
        channel,
        [ids.conversation_key(channel.bot_id, "LIVE", channel.id, user) for user in users],
    )


def _replica_of(r: Redis) -> Redis:
    """Another Redis holding what `r` holds: the replica that takes over."""
    replica = cast(Redis, fakeredis.FakeRedis(decode_responses=True))
    copy_all(r, replica)
    return replica


def test_what_a_batch_saved_is_handed_on_though_redis_failed_under_another_turn(
    fake_redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a cluster, the node of one conversation of a batch is down: the others' commits
    were saved, and their queues go to the workers before the batch says Redis failed
    (else they waited out their claim, 40 s)."""
    sender, channel, (up, down) = _said_by(fake_redis, settings, ["up", "down"])
    real = fanout._add_commit

    def down_node(pipe: Any, commit: fanout.TurnCommit, head: list[Any]) -> None:
        if commit.conversation_key != down:
            real(pipe, commit, head)
        else:
            pipe.execute_command("EVAL", "return redis.error_reply('READONLY replica')", 0)

    monkeypatch.setattr(fanout, "_add_commit", down_node)
    with pytest.raises(ReadOnlyError):
        turns.run_batch(fake_redis, settings, sender, [up, down])
    assert [split_due_member(m)[0] for m in sender.deliveries] == [queue_ref(up, channel.id)]
    assert fake_redis.llen(keys.conversation_inbox(up)) == 0
    assert fake_redis.llen(keys.conversation_inbox(down)) == 1
