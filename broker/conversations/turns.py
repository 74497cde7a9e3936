"""Bot turns: one conversation's signals and waiting messages, run through its bot, in order.

A turn holds the conversation's lock and reads its meta, its signals and a batch of its inbox
in one round trip. Signals come first (an offload's answer, a timer that fired: see
`broker.conversations.handover`), then the messages, one by one, until the dialogue waits for an
offload's answer. It commits the new state, the transcript and the outbound deliveries
in one script, trimming what it used of the inbox and the signals in the same step. A
crash before the commit leaves everything for the next try; a crash after it leaves
nothing to redo.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from broker.bots.actions import ActionOutcome, Actions, ApiAnswer, ApiRequest
from broker.bots.custom_actions import ActionContext
from broker.bots.engine import Engine, Turn, absorb, check_variables
from broker.channels.channel import Channel
from broker.conversations import dead_turns, transcript
from broker.conversations.conversation import ConversationMeta
from broker.conversations.handover import (
    TIMER_NAMES,
    Handover,
    IndexChanges,
    Settled,
    resumed_notice,
    timer_member,
)
from broker.conversations.loading import KNOWN, Known, Loader
from broker.conversations.outbox import Outbox
from broker.core import clock, generation, ids, keys, logs, metrics, scripts
from broker.core.connection import Pipeline, Redis, index_shards, unavailable_reason
from broker.core.defaults import TURN_BATCH, TURN_PUT_OFF
from broker.core.sender import TaskSender
from broker.core.settings import Settings
from broker.delivery import fanout, health
from broker.delivery.fanout import Committed, TurnCommit
from broker.delivery.records import Delivery, due_member

log = logging.getLogger(__name__)

#: Transcript items an offload's first read of the history takes from its tail: the whole
#: of most conversations, in one round trip.
_HISTORY_PAGE = 256


#: Gives the queues a batch claimed (their claim token, and each queue's deliveries in
#: order; none for a queue whose head the worker must read) to whoever works them in this
#: process: the worker's delivery loop.
HandOff = Callable[[str, dict[str, list[Delivery]]], None]


def run_pending(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    conversation_key: str,
    actions: Actions | None = None,
) -> int:
    """Work through everything waiting for one conversation; returns messages processed.
    The bot's API calls and custom actions go through `actions` (none: they fail)."""
    return run_batch(r, settings, sender, [conversation_key], actions=actions)


#: Given by a turn runner, called when a turn of its batch is about to wait on something
#: outside (a bot's API call, a custom action) with `split`: the runner either calls it,
#: which takes the rest of the batch (its other conversations, run or not) out and returns
#: them to be run and committed, runs that in another thread and returns True; or returns
#: False when it went away already (it has nothing else of the batch), and waits; or raises
#: TooManyAway, and the turn is put off.
GoAway = Callable[[Callable[[], Callable[[], int]]], bool]


class TooManyAway(Exception):
    """Raised by a `GoAway` whose runner cannot go away: too many wait outside already."""


def run_batch(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    conversation_keys: Sequence[str],
    *,
    actions: Actions | None = None,
    hand_off: HandOff | None = None,
    token: str | None = None,
    go_away: GoAway | None = None,
) -> int:
    """Work through everything waiting for several conversations at once, a round trip per
    step for all of them; returns messages processed. The conversations are held with
    `token` (a new one unless given: `hand_back` lets go of them with it).

    A conversation another worker holds is left to it: it drains the inbox before letting
    go. The queues that were empty before a turn are claimed, for `hand_off` when one is
    given, and otherwise handed to the workers through `sender`.

    Before each wait on something outside, the batch's locks are renewed (a conversation
    whose lock was lost is left at once, its call not made) and, through `go_away`, the
    rest of the batch may go on in another thread, so that a slow API holds back only the
    conversation that calls it.

    A turn that raises is tried again after SWITCHBOARD_TURN_RETRY_DELAY, one message (or
    signal) at a time, and what keeps failing is parked (`dead_turns`) so that the
    conversation goes on.
    """
    passes = _Passes(r, settings, sender, actions, hand_off, token or ids.random_hex(8), go_away)
    return passes.run(list(dict.fromkeys(conversation_keys)), set())


@dataclass(frozen=True)
class _Passes:
    """What the passes over one batch's conversations share."""

    r: Redis
    settings: Settings
    sender: TaskSender
    actions: Actions | None
    hand_off: HandOff | None
    token: str
    go_away: GoAway | None

    def run(self, remaining: list[str], held: set[str], batch: _Batch | None = None) -> int:
        """Pass after pass until nothing is left for `remaining`, whose locks `held` are
        ours; `batch` is a pass already begun (the rest of a batch split off)."""
        processed = 0
        while remaining or batch is not None:
            if batch is None:
                batch = self._begin(remaining, held)
            batch.run_all()
            # A claim token of its own per pass: a queue claimed in an earlier pass may be
            # in a worker's hands, its entry on `sb:due` named by that pass's token.
            claim_token = ids.random_hex(8)
            committed = batch.commit(claim_token)
            outcome = _PassOutcome.of(committed, batch.used, batch.put_off, batch.failed_again)
            processed += outcome.processed
            remaining = outcome.remaining
            held.intersection_update(remaining)
            _after(
                self.r,
                self.settings,
                self.sender,
                batch,
                committed,
                outcome.ended,
                claim_token,
                self.hand_off,
            )
            if outcome.put_off:
                _put_off(self.r, outcome.put_off, self.token)
            if batch.unavailable is not None:
                raise batch.unavailable
            batch = None
        return processed

    def _begin(self, conversation_keys: list[str], held: set[str]) -> _Batch:
        """A pass over `conversation_keys`: their locks taken (or kept) and what waits for
        them read, with what their turns need that this process does not know yet."""
        reads, known = _read(self.r, self.settings, conversation_keys, self.token, held)
        held.update(reads)
        batch = _Batch(self, known, list(reads.items()))
        batch.loader.prefetch(
            work.meta.conversation for work in reads.values() if work.meta is not None
        )
        return batch


@dataclass(frozen=True)
class _PassOutcome:
    """Where a pass leaves its conversations."""

    #: Messages the turns saved took.
    processed: int
    #: Conversations whose turn ended: they leave the turn schedule.
    ended: list[str]
    #: Conversations whose turn was put off (`_PutOff`), and not lost meanwhile.
    put_off: list[str]
    #: Conversations with more to do at once: the next pass's.
    remaining: list[str]

    @classmethod
    def of(
        cls,
        committed: Mapping[str, Committed],
        used: Mapping[str, int],
        put_off: Sequence[str],
        failed_again: Sequence[str],
    ) -> _PassOutcome:
        """Sorted from what the commit said of each turn (`committed`), the messages each took
        (`used`), and the turns put off or failed again that the pass gathered."""
        kept_off = [key for key in put_off if key not in committed or not committed[key].lost]
        return cls(
            processed=sum(used[key] for key, done in committed.items() if not done.lost),
            ended=[key for key, done in committed.items() if done.ended],
            put_off=kept_off,
            remaining=[
                *(
                    key
                    for key, done in committed.items()
                    if not done.ended and not done.lost and key not in kept_off
                ),
                *failed_again,
            ],
        )


def hand_back(r: Redis, conversation_keys: Sequence[str], token: str) -> None:
    """Let go of conversations held with `token` and put them on the ready list, so that a
    runner takes them at once: after Redis failed under their batch, their claims would
    otherwise hold them until they run out. Another holder's lock is left alone; one with
    nothing waiting costs a runner a look."""

    def build(pipe: Pipeline) -> None:
        for key in conversation_keys:
            scripts.add(pipe, "lock_release", [keys.conversation_lock(key)], [token])
        pipe.rpush(keys.READY, *conversation_keys)

    scripts.execute(r, build)


def _put_off(r: Redis, conversation_keys: list[str], token: str) -> None:
    """Let go of conversations whose turn was put off (`_PutOff`), due again on the turn
    schedule in TURN_PUT_OFF seconds."""
    log.info(
        "%d turn(s) put off for %s s: too many wait outside already",
        len(conversation_keys),
        TURN_PUT_OFF,
    )
    metrics.count(metrics.BOT_TURNS, "put_off", n=len(conversation_keys))
    due = clock.now() + TURN_PUT_OFF

    def build(pipe: Pipeline) -> None:
        for shard, members in keys.by_shard(keys.TURNS, conversation_keys, index_shards(r)).items():
            pipe.zadd(shard, dict.fromkeys(members, due))
        for key in conversation_keys:
            scripts.add(pipe, "lock_release", [keys.conversation_lock(key)], [token])

    scripts.execute(r, build)


@dataclass(frozen=True)
class _Work:
    """What a turn read: the meta and its waiting signals and messages, as JSON text."""

    #: None when the conversation was deleted.
    meta: ConversationMeta | None
    signals: list[str]
    messages: list[str]
    #: When the turn schedule was last moved on for it (the limit to leave it by).
    scheduled_until: float

    def first_item(self) -> _Work:
        """Only the first signal or, if there is none, the first message."""
        if self.signals:
            return _Work(self.meta, self.signals[:1], [], self.scheduled_until)
        return _Work(self.meta, [], self.messages[:1], self.scheduled_until)

    @property
    def single_item(self) -> dead_turns.Item | None:
        """The one thing this work holds, or None when it holds more (or nothing)."""
        if len(self.signals) + len(self.messages) != 1:
            return None
        if self.signals:
            return dead_turns.Item("signal", self.signals[0])
        return dead_turns.Item("message", self.messages[0])


def _read(
    r: Redis, settings: Settings, conversation_keys: list[str], token: str, held: set[str]
) -> tuple[dict[str, _Work], Known]:
    """Take (or keep) each conversation's lock and read what waits for it, in one round
    trip; conversations another worker holds are left out. With it, what this process
    knows of the bots and channels, current as of that round trip."""
    lease_ms = clock.ms(settings.claim_lease)
    until = clock.now() + settings.claim_lease
    # A conversation's first pass leaves its schedule as it is: whoever made the turn due
    # (a message at ingress, the scheduler handing it out) set it a lease ahead a moment
    # ago, no later than `until`. Later passes move it on.
    schedule = keys.by_shard(
        keys.TURNS, [key for key in conversation_keys if key in held], index_shards(r)
    )

    def build(pipe: Pipeline) -> None:
        generation.read(pipe)
        # Our time on the schedule moves on while we work; a message that comes in later
        # moves it further (see ingress), which keeps it there when our turn ends.
        for shard, members in schedule.items():
            pipe.zadd(shard, dict.fromkeys(members, until), xx=True, gt=True)
        for key in conversation_keys:
            lock = keys.conversation_lock(key)
            if key in held:
                scripts.add(pipe, "lock_extend", [lock], [token, lease_ms])
            else:
                # Not `pipe.set`: its check of experimental arguments costs ten times
                # the command's own packing, once per conversation.
                pipe.execute_command("SET", lock, token, "NX", "PX", lease_ms)  # type: ignore[no-untyped-call]
            pipe.hgetall(keys.conversation_meta(key))
            pipe.lrange(keys.conversation_signals(key), 0, TURN_BATCH - 1)
            pipe.lrange(keys.conversation_inbox(key), 0, TURN_BATCH - 1)

    seen_generation, *answers = scripts.execute(r, build)
    answers = answers[len(schedule) :]  # past a ZADD a shard of the schedule
    reads: dict[str, _Work] = {}
    for index, key in enumerate(conversation_keys):
        locked, raw_meta, signals, messages = answers[4 * index : 4 * index + 4]
        if not locked:
            continue  # another worker has it; it drains the inbox before letting go
        meta = ConversationMeta.from_redis(key, raw_meta) if raw_meta else None
        work = _Work(meta, signals, messages, until)
        # After a failure, one item at a time, so that the next failure names its cause.
        reads[key] = work.first_item() if meta is not None and meta.failures else work
    return reads, KNOWN.of(seen_generation)


def _after(
    r: Redis,
    settings: Settings,
    sender: TaskSender,
    batch: _Batch,
    committed: dict[str, Committed],
    ended: list[str],
    claim_token: str,
    hand_off: HandOff | None,
) -> None:
    """What follows a commit: the queues go to be worked, ended turns leave the schedule,
    and index entries the turns no longer need go."""
    claimed = {ref: queue for done in committed.values() for ref, queue in done.claimed.items()}
    for done in committed.values():
        claimed.update((ref, []) for ref in done.unheld)  # the worker reads their head
    if claimed:
        if hand_off is not None:
            hand_off(claim_token, claimed)
        else:
            sender.deliver([due_member(ref, claim_token) for ref in claimed])
    stale = [member for done in committed.values() for member in done.stale]
    shards = index_shards(r)

    def build(pipe: Pipeline) -> None:
        for shard, members in keys.by_shard(keys.DUE, stale, shards).items():
            pipe.zrem(shard, *members)
        if ended:
            limit = max(batch.scheduled_until.get(key, 0.0) for key in ended)
            for shard, members in keys.by_shard(keys.TURNS, ended, shards).items():
                scripts.add(pipe, "turns_release", [shard], [limit, *members])
        batch.changes.add_removes(pipe)

    if stale or ended or batch.changes.removes:
        scripts.execute(r, build)


class _LeaseLost(Exception):
    """The turn's conversation is another's now: the turn stops, saving nothing."""


class _PutOff(Exception):
    """The running turn is about to wait outside while no runner can be spared to wait: it
    stops before that message, and its conversation comes back after TURN_PUT_OFF seconds,
    rather than hold up the ready list for every other conversation during the wait."""


class _SaveFirst(Exception):
    """The running turn is about to wait outside while it holds answers to earlier messages
    (or signals): it stops before the message that waits, so that those answers are saved
    and sent now rather than after the wait; its next pass begins with that message."""


class _Batch:
    """The turns of one pass over several conversations, gathered for one commit."""

    def __init__(self, passes: _Passes, known: Known, todo: list[tuple[str, _Work]]) -> None:
        self.passes = passes
        self.r = passes.r
        self.settings = passes.settings
        self.actions = None if passes.actions is None else _Outside(passes.actions, self)
        self.lock_token = passes.token
        #: The turns not run yet, and the one running.
        self.todo = todo
        self.running: str | None = None
        #: Whether the running turn has answered something not saved yet (`_SaveFirst`).
        self.running_answered = False
        #: Whether the running turn is settling its signals: one may not stop half-way.
        self.settling = False
        self.commits: dict[str, TurnCommit] = {}
        self.works: dict[str, _Work] = {}
        self.used: dict[str, int] = {}
        #: Conversations whose turn failed and may go on at once, one item at a time.
        self.failed_again: list[str] = []
        #: Conversations whose turn was put off (`_PutOff`).
        self.put_off: list[str] = []
        self.changes = IndexChanges()
        self.scheduled_until: dict[str, float] = {}
        #: Where `renew` last moved the batch's time on the schedule, and when (monotonic).
        self.renewed_until = 0.0
        self.renewed_at = time.monotonic()
        #: Redis failed under some of the pass's commits, not all (`commit`): raised once
        #: the pass has handed on what the others saved.
        self.unavailable: Exception | None = None
        self.loader = Loader(self.r, known)

    def run_all(self) -> None:
        """Run the turns of the pass, one after another, until none is left in this batch
        (the rest may go to another thread, `before_wait`)."""
        while self.todo:
            if time.monotonic() - self.renewed_at > self.settings.claim_lease / 3:
                # Turns that ran long (regexes at their limits, say) must not let the locks
                # of the conversations after them run out.
                self.renew()
            conversation_key, work = self.todo.pop(0)
            self.running = conversation_key
            try:
                self.run(conversation_key, work)
            finally:
                self.running = None

    def before_wait(self) -> None:
        """The running turn is about to wait on something outside: renew the locks of the
        batch's conversations and their time on the schedule, and offer the rest of the
        batch to another thread. _LeaseLost when the running turn's lock is not ours;
        _SaveFirst when it has answers to save first; _PutOff when no runner can wait."""
        if self.running_answered:
            raise _SaveFirst(self.running)
        if not self.renew():
            raise _LeaseLost(self.running)
        if self.passes.go_away is None:
            return
        try:
            self.passes.go_away(self._split)
        except TooManyAway:
            if self.settling:
                # A signal has moved the handover on already: its wait is made here.
                return
            raise _PutOff(self.running) from None

    def renew(self) -> bool:
        """Renew the locks of the batch's conversations and their time on the schedule;
        whether the running turn's lock (if one runs) is still ours."""
        running = self.running
        ran = self.works.keys() - {running}
        held = [*([running] if running else []), *ran, *(key for key, _ in self.todo)]
        if not held:
            return True
        until = clock.now() + self.settings.claim_lease
        lease_ms = clock.ms(self.settings.claim_lease)
        schedule = keys.by_shard(keys.TURNS, held, index_shards(self.r))

        def build(pipe: Pipeline) -> None:
            for key in held:
                lock = keys.conversation_lock(key)
                scripts.add(pipe, "lock_extend", [lock], [self.lock_token, lease_ms])
            for shard, members in schedule.items():
                pipe.zadd(shard, dict.fromkeys(members, until), xx=True, gt=True)

        renewed = scripts.execute(self.r, build)[: len(held)]
        for key in self.scheduled_until:
            self.scheduled_until[key] = until
        self.renewed_until, self.renewed_at = until, time.monotonic()
        return running is None or bool(renewed[0])

    @contextmanager
    def outside(self) -> Iterator[None]:
        """Around a wait on something outside, which may outlast a claim lease: first
        `before_wait`, then the batch's locks are renewed every third of a lease inside."""
        self.before_wait()
        done = threading.Event()

        def keep() -> None:
            while not done.wait(self.settings.claim_lease / 3):
                try:
                    self.renew()
                except Exception as exc:  # the commit finds the lock lost, if it is
                    log.warning("renewing the locks of a waiting turn failed: %s", exc)

        keeper = threading.Thread(target=keep, name="turn-locks", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join()

    def _split(self) -> Callable[[], int]:
        """Take every conversation but the running one out of this batch, into one that
        goes on from where this one is: returns what runs and commits it."""
        running = self.running
        if not self.todo and self.works.keys() <= {running}:
            return lambda: 0
        rest = _Batch(self.passes, self.loader.known, self.todo)
        self.todo = []
        for key in [key for key in self.works if key != running]:
            rest.works[key] = self.works.pop(key)
            rest.scheduled_until[key] = self.scheduled_until.pop(key)
            if key in self.commits:
                rest.commits[key] = self.commits.pop(key)
            if key in self.used:
                rest.used[key] = self.used.pop(key)
        rest.failed_again, self.failed_again = self.failed_again, []
        rest.put_off, self.put_off = self.put_off, []
        rest.changes, self.changes = self.changes, IndexChanges()
        rest.renewed_until, rest.renewed_at = self.renewed_until, self.renewed_at
        held = {*rest.works, *(key for key, _ in rest.todo)}
        return lambda: self.passes.run([], held, rest)

    def run(self, conversation_key: str, work: _Work) -> None:
        """One conversation's turn (`used` holds the messages it took). A turn that fails for a
        reason of its own is counted (`dead_turns.failed`), its messages left for the next
        try; Redis's trouble is raised."""
        self.scheduled_until[conversation_key] = max(work.scheduled_until, self.renewed_until)
        self.works[conversation_key] = work
        if work.meta is None:
            self._forget(conversation_key, work)
            self.used[conversation_key] = len(work.messages)
            return
        if dead_turns.park_exhausted(
            self.r, self.settings, self.lock_token, work.meta, work.single_item
        ):
            self.failed_again.append(conversation_key)
            return
        started = time.monotonic()
        try:
            used = self._turn(work.meta, work)
        except _LeaseLost:
            logs.event(
                log,
                logging.INFO,
                "bot turn left: its lock was lost",
                **work.meta.conversation.log_fields(),
            )
            del self.works[conversation_key]
            return
        except Exception as exc:
            self._failed(conversation_key, work, exc)
            return
        self.used[conversation_key] = used
        if conversation_key in self.put_off:
            return
        metrics.count(metrics.BOT_TURNS, "ok")
        metrics.observe(metrics.BOT_TURN_DURATION, time.monotonic() - started)
        metrics.count(metrics.BOT_TURN_MESSAGES, n=used)

    def _failed(self, conversation_key: str, work: _Work, exc: Exception) -> None:
        """Count a turn that failed for a reason of its own; Redis's trouble is raised."""
        meta = work.meta
        if unavailable_reason(exc) is not None or meta is None:
            raise exc  # not the message's fault: the schedule brings the turn back
        metrics.count(metrics.BOT_TURNS, "error")
        if dead_turns.failed(self.r, self.settings, self.lock_token, meta, work.single_item, exc):
            self.failed_again.append(conversation_key)
        else:  # it waits for its retry, on the turn schedule
            lock = keys.conversation_lock(conversation_key)
            scripts.run(self.r, "lock_release", [lock], [self.lock_token])

    def _turn(self, meta: ConversationMeta, work: _Work) -> int:
        conversation = meta.conversation
        if not meta.delivery_epoch:
            # Of the first message: a turn run again from the same state makes the same ids.
            meta.delivery_epoch = ids.delivery_epoch(work.messages[0] if work.messages else None)
        turn = _BotTurn(
            self.r,
            self.settings,
            meta,
            self.loader.engine(conversation, self.actions),
            self.loader.offloading_endpoint(conversation.bot_id),
            self.loader.channel,
        )
        turn.give_back_if_no_agent()
        # A signal's wait outside (an offload-failed state calling an API) is made where it
        # comes: the signal has moved the handover on by then.
        self.running_answered, self.settling = False, True
        for signal in work.signals:
            turn.outbox.cause = signal
            turn.settle(json.loads(signal))
        self.settling = False
        used = 0
        started = time.monotonic()
        for message in work.messages:
            if turn.handover.waiting:
                break  # the rest wait for the offload's answer, in the inbox
            if time.monotonic() - started > self.settings.claim_lease / 2:
                break  # slow API calls: commit, and renew the lock before the rest
            self.running_answered = bool(used or work.signals)
            turn.outbox.cause = message
            try:
                turn.take(json.loads(message))
            except _SaveFirst:
                break
            except _PutOff:  # only ever before a turn's first answer: nothing to save
                self.put_off.append(conversation.key)
                return 0
            used += 1
        commit = turn.finish(trim=used, trim_signals=len(work.signals))
        self.commits[conversation.key] = commit
        self.changes.merge(turn.handover.changes)
        logs.event(
            log,
            logging.INFO,
            "bot turn",
            sessionId=conversation.conversation_id,
            botId=conversation.bot_id,
            messageIds=[json.loads(m)["messageId"] for m in work.messages[:used]],
            signals=len(work.signals),
            deliveryIds=[d.id for d in commit.deliveries],
        )
        return used

    def _forget(self, conversation_key: str, work: _Work) -> None:
        """The conversation was deleted while its messages waited: they go, and its timers."""
        self.r.delete(
            keys.conversation_inbox(conversation_key), keys.conversation_signals(conversation_key)
        )
        self.r.zrem(
            keys.shard_of(keys.TIMERS, conversation_key, index_shards(self.r)),
            *(timer_member(conversation_key, name) for name in TIMER_NAMES),
        )
        self.commits[conversation_key] = TurnCommit(conversation_key)

    def commit(self, claim_token: str) -> dict[str, Committed]:
        """Save every turn of the pass at once. Should that fail for a reason other than
        Redis's, each is saved alone, and a turn that cannot be is counted as failed; so is
        one whose lock ran out while it ran. One whose lock went while its lease held (Redis
        lost it: a failover) is handed back to run again at once (`hand_back`), uncounted.
        Should Redis fail under some (their node of a cluster is down), what the others
        saved is kept, and the failure raised once the pass has handed it on
        (`unavailable`)."""
        self.changes.write_adds(self.r)
        commits = list(self.commits.values())
        saved: dict[str, Committed] = {}
        try:
            saved = self._commit(commits, claim_token)
        except fanout.PartlyCommitted as partly:
            saved = {
                commit.conversation_key: done
                for commit, done in zip(commits, partly.done, strict=True)
                if done is not None
            }
            if unavailable_reason(partly.error) is not None:
                self.unavailable = partly.error
            else:
                unsaved = [c for c in commits if c.conversation_key not in saved]
                saved.update(self._commit_each(unsaved, claim_token))
        except Exception as exc:
            if unavailable_reason(exc) is not None:
                raise
            saved = self._commit_each(commits, claim_token)
        within_lease = time.monotonic() - self.renewed_at < self.settings.claim_lease * 0.9
        lost = [key for key, done in saved.items() if done.lost and self.works[key].meta]
        for key in lost:
            meta = self.works[key].meta
            assert meta is not None
            if within_lease:
                logs.event(
                    log,
                    logging.WARNING,
                    "bot turn's lock went within its lease (Redis lost it: a failover?): "
                    "nothing was saved, and it runs again now",
                    **meta.conversation.log_fields(),
                )
            else:
                # Counted, so that a turn that always outlives its lease ends parked.
                dead_turns.lost(self.r, self.settings, meta, self.works[key].single_item)
        if lost and within_lease:
            hand_back(self.r, lost, self.lock_token)
        return saved

    def _commit_each(self, commits: list[TurnCommit], claim_token: str) -> dict[str, Committed]:
        """Save each turn alone; one that cannot be is counted as failed."""
        saved: dict[str, Committed] = {}
        for commit in commits:
            key = commit.conversation_key
            try:
                saved.update(self._commit([commit], claim_token))
            except Exception as exc:
                self._failed(key, self.works[key], exc)
        return saved

    def _commit(self, commits: list[TurnCommit], claim_token: str) -> dict[str, Committed]:
        done = fanout.commit_turns(
            self.r,
            self.settings,
            commits,
            lock_token=self.lock_token,
            claim_token=claim_token,
            end_turns=True,
        )
        return {
            commit.conversation_key: result for commit, result in zip(commits, done, strict=True)
        }


@dataclass(frozen=True)
class _Outside:
    """The action interface of a batch's engines: each call is a wait outside
    (`_Batch.outside`)."""

    actions: Actions
    batch: _Batch

    def call_api(self, request: ApiRequest) -> ApiAnswer:
        with self.batch.outside():
            return self.actions.call_api(request)

    def run_action(self, name: str, context: ActionContext, timeout: float) -> ActionOutcome:
        with self.batch.outside():
            return self.actions.run_action(name, context, timeout)


class _BotTurn:
    """One pass of a conversation's bot turn: what it changes, gathered for one commit."""

    def __init__(
        self,
        r: Redis,
        settings: Settings,
        meta: ConversationMeta,
        engine: Engine | None,
        offloading_endpoint: str | None,
        channel: Callable[[str], Channel | None],
    ) -> None:
        self.r = r
        self.settings = settings
        self.meta = meta
        #: What the conversation remembered before the turn (no step changes it in place).
        self.memory_before = meta.memory
        self.engine = engine
        self.outbox = Outbox.for_conversation(meta, offloading_endpoint)
        self.handover = Handover(settings, meta.conversation, meta.handover)
        self._channel = channel

    def settle(self, signal: dict[str, Any]) -> None:
        """Act on one signal: an offload's answer, or a timer."""
        now = clock.now()
        settled = self.handover.settle(signal, now)
        if settled is Settled.OFFLOAD_FAILED and self.engine is not None:
            self._apply(self._answer(self.engine.offload_failed(self.meta.memory)))
        elif settled is Settled.RESUMED:
            notice = resumed_notice("timeout", self.settings.resume_after)
            self.outbox.note(transcript.item("bot", now, notice))

    def give_back_if_no_agent(self) -> None:
        """The bot's offloading integration was removed: no agent can answer any more, so a
        conversation an agent had is the bot's again, and so are its waiting messages."""
        handover = self.meta.handover
        if (handover.paused or handover.agent_messages) and not self.outbox.can_offload:
            logs.event(
                log,
                logging.INFO,
                "handover: no offloading integration, the bot answers again",
                **self.meta.conversation.log_fields(),
            )
            self.handover.resume()
            handover.agent_messages = 0

    def take(self, message: dict[str, Any]) -> None:
        """One user message: answered by the bot, or only kept while an agent has the
        conversation (it still reaches the offloading webhook). The engine runs first: should
        it stop at a wait outside (`_SaveFirst`), the turn is as it was."""
        handover = self.meta.handover
        answer = None
        if self.engine is not None and not handover.paused and not handover.agent_messages:
            answer = self._answer(
                self.engine.step(self.meta.memory, message, can_offload=self.outbox.can_offload)
            )
        self.outbox.received_at = message["receivedAt"]
        user_item = transcript.user_message(
            message,
            self.meta.conversation.bot_id,
            None if self.engine is None else self.engine.payloads,
        )
        self.outbox.note(transcript.item("user", message["receivedAt"], user_item))
        if answer is not None:
            self._apply(answer)
            return
        if handover.agent_messages:
            handover.agent_messages -= 1  # it came while the agent had the conversation
        self.meta.memory = absorb(self.meta.memory, message)

    def _answer(self, turn: Turn) -> Turn:
        """`turn`, gone on to the offload-failed state where it hands the conversation to a
        disabled offloading endpoint: no one takes it until an operator enables it. What
        that state waits on outside (an API call) is made here, before anything of the
        turn changes (`_SaveFirst`)."""
        for index, output in enumerate(turn.outputs):
            if output.kind == "offload" and self._offloading_disabled():
                assert self.engine is not None
                failed = self._answer(self.engine.offload_failed(turn.memory))
                return replace(failed, outputs=[*turn.outputs[:index], *failed.outputs])
        return turn

    def _apply(self, turn: Turn) -> None:
        self.meta.memory = turn.memory
        self.outbox.send_outputs(self._channel(self.meta.channel_id), turn.outputs, self._offload)

    def _offload(self, body: dict[str, Any]) -> None:
        now = clock.now()
        delivery_id = self.outbox.offload(
            body["payload"],
            self._history,
            transcript_bytes=self.settings.transcript_bytes,
            expires_at=now + self.settings.offload_timeout,
        )
        self.handover.offload_sent(delivery_id, now)

    def finish(self, *, trim: int, trim_signals: int) -> TurnCommit:
        """What the turn saves; its index changes are in `handover.changes`. TooLarge when
        it grew the variables past their limit (`check_variables`)."""
        check_variables(
            self.memory_before, self.meta.memory, self.settings.conversation_variables_bytes
        )
        return self.outbox.close(
            self.meta, clock.now(), trim=trim, trim_signals=trim_signals, clear_failures=True
        )

    def _offloading_disabled(self) -> bool:
        endpoint_id = self.outbox.offloading_endpoint
        return endpoint_id is not None and health.is_disabled(self.r, endpoint_id)

    def _history(self, max_items: int, max_bytes: int) -> list[dict[str, Any]]:
        """The newest items of the transcript committed before this turn, oldest first, as
        many as take at most `max_items` items and `max_bytes` bytes. Read from the tail a
        page at a time, each twice the last, so at most about twice what is kept is read."""
        key = keys.conversation_transcript(self.meta.conversation.key)
        kept: list[dict[str, Any]] = []
        total, page = 0, _HISTORY_PAGE
        while len(kept) < max_items:
            page = min(page, max_items - len(kept))
            end = -len(kept) - 1
            entries = self.r.lrange(key, end - page + 1, end)
            for entry in reversed(entries):
                total += len(entry.encode())
                if total > max_bytes:
                    return kept[::-1]
                kept.append(json.loads(entry))
            if len(entries) < page:
                break
            page *= 2
        return kept[::-1]
