"""The scheduler's side of conversations: bot turns whose worker died (or whose retry is due),
timers that fire (an offload's answer that is late, an agent who has been silent too long),
and housekeeping of their indexes."""

from __future__ import annotations

from broker.conversations import conversation_store, dead_turns
from broker.conversations.handover import split_timer
from broker.core import keys, schedules
from broker.core.connection import Redis
from broker.core.defaults import SCHEDULER_BATCH, SCHEDULER_PASS_BATCHES
from broker.core.sender import TaskSender
from broker.core.settings import Settings

#: At most this many turns or timers (of each shard) are handed out in one pass.
_PER_PASS = SCHEDULER_BATCH * SCHEDULER_PASS_BATCHES


def housekeep(r: Redis, settings: Settings) -> None:
    """Drop index entries of conversations and dead letters of turns that expired."""
    conversation_store.expire_index_entries(r, settings)
    dead_turns.housekeep(r, settings)


def hand_out_turns(r: Redis, settings: Settings, sender: TaskSender) -> int:
    """Wake the bot turns that are due on their schedule: those whose claim ran out (their
    worker died, or no task was sent for them), and retries of failed turns and turns put
    off that are due; returns how many."""
    taken = schedules.claim(r, keys.TURNS, settings.claim_lease, _PER_PASS)
    for conversation_key in taken.members:
        sender.bot_turn(conversation_key)
    taken.raise_error()
    return len(taken.members)


def fire_timers(r: Redis, settings: Settings, sender: TaskSender) -> int:
    """Give each due timer's conversation a signal and wake its bot turn; returns how many."""
    taken = schedules.claim(r, keys.TIMERS, settings.claim_lease, _PER_PASS)
    for member in taken.members:
        conversation_key, name = split_timer(member)
        signal = {"kind": "timer", "name": name}
        conversation_store.give_signal(r, settings, sender, conversation_key, signal)
    taken.raise_error()
    return len(taken.members)
