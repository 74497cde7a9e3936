"""Fan-out: a bot turn's memory, transcript and deliveries, committed at once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from broker.core import clock, keys, scripts
from broker.core.connection import HashFields, Pipeline, Redis
from broker.core.defaults import TRANSCRIPT_MAX
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery.records import Delivery, queue_ref


def commit_turn(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    conversation_key: str,
    *,
    trim: int,
    trim_signals: int = 0,
    meta: HashFields,
    transcript_items: list[dict[str, Any]],
    new: Sequence[Delivery],
) -> None:
    """Save a turn and its deliveries at once, then wake the queues that were idle.

    `trim` and `trim_signals` are how many inbox messages and signals the turn used up.
    """
    plan = {
        "meta": [str(part) for pair in meta.items() for part in pair],
        "trim": trim,
        "trimSignals": trim_signals,
        "transcript": [json.dumps(item, ensure_ascii=False) for item in transcript_items],
        "transcriptMax": TRANSCRIPT_MAX,
        "deliveries": [{"id": d.id, "fields": d.to_fields()} for d in new],
    }
    turn_keys = [
        keys.conversation_meta(conversation_key),
        keys.conversation_inbox(conversation_key),
        keys.conversation_transcript(conversation_key),
        keys.conversation_signals(conversation_key),
    ]
    for d in new:
        turn_keys += [
            keys.fifo(conversation_key, d.endpoint_id),
            keys.delivery(conversation_key, d.id),
        ]
    refs = sorted({queue_ref(conversation_key, d.endpoint_id) for d in new})
    if new:
        # Written before the turn, since the indexes are not in the conversation's hash slot:
        # should we die between the two, the scheduler still finds the queues (a queue
        # found empty is let go), and the listings skip ids whose record never came.
        claim = clock.now() + settings.claim_lease

        def index(pipe: Pipeline) -> None:
            for d in new:
                pipe.zadd(keys.DELIVERIES, {d.id: clock.ms(d.created_at)})
                pipe.zadd(keys.endpoint_deliveries(d.endpoint_id), {d.id: clock.ms(d.created_at)})
            # nx: a queue that already waits (a retry, a claim) keeps its time.
            pipe.zadd(keys.DUE, dict.fromkeys(refs, claim), nx=True)

        scripts.execute(r, index)
    fresh = scripts.run(r, "turn_commit", turn_keys, [json.dumps(plan)])
    woken = sorted({queue_ref(conversation_key, new[i - 1].endpoint_id) for i in fresh})
    if woken:
        r.zadd(keys.DUE, dict.fromkeys(woken, clock.now() + settings.claim_lease))
        sender.deliver(woken)
