"""Every Redis key Switchboard uses, and nothing else names one.

Keys that one script or transaction touches together share a hash tag, so that the same
code runs on Redis Cluster: a conversation's keys carry `{c:<conversation key>}`, an
endpoint's `{e:<endpoint id>}`, a bot's `{b:<bot id>}`. Work that spans tags (a global
index beside a conversation's keys) is written so that a crash can only leave something
to be picked up, never lost.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable

PREFIX = "sb"

# --- global indexes -------------------------------------------------------------
BOTS = f"{PREFIX}:bots"  # zset: bot id -> created (ms)
ENDPOINTS = f"{PREFIX}:endpoints"  # zset: endpoint id -> created (ms)
ADMIN_TOKENS = f"{PREFIX}:admin-tokens"  # hash: sha256(token) -> JSON description
#: hash: sha256(bot-scoped API token) -> JSON {"id", "botId", "description", "createdAt"}
API_TOKENS = f"{PREFIX}:api-tokens"
#: zset of delivery queues, as "<conversation key>|<endpoint id>#<claim token>", by the time
#: someone must look at them: a due retry, or the end of a worker's claim. In shards (`due`).
DUE = f"{PREFIX}:due"
#: zset of conversations with a bot turn pending, by the end of the current claim. In shards
#: (`turns`).
TURNS = f"{PREFIX}:turns"
#: list of conversations whose bot turn is due now; the workers' turn runners take them.
READY = f"{PREFIX}:ready"
#: pub/sub channel: the id of an endpoint whose record or health was just changed, for
#: the workers to stop using what they kept of it.
ENDPOINT_CHANGES = f"{PREFIX}:endpoint-changes"
#: string, a new random value after every change of a bot, its offloading or a channel:
#: bot turns keep what they read of those until it changes (`broker.core.generation`).
SETTINGS_GENERATION = f"{PREFIX}:settings-generation"
DELIVERIES = f"{PREFIX}:deliveries"  # zset: delivery id -> created (ms)
#: zset: "<delivery id>|<endpoint id>" of a delivery whose record has a time to live -> when
#: it expires (ms): the delivery then leaves `DELIVERIES` and its endpoint's index.
EXPIRING = f"{PREFIX}:deliveries:expiring"
DEAD = f"{PREFIX}:dead"  # zset: delivery id -> dead-lettered at (ms)
#: string, JSON {"at", "error"}: Celery's broker refused a task lately (it expires a minute
#: after the last refusal); operators see it in `switchboard status` and on the dashboard.
BROKER_TROUBLE = f"{PREFIX}:broker-trouble"
#: hash of what every process counted for /metrics: field JSON [metric, [label values], part]
#: ("" for a counter, a bucket's index, "sum" or "count" for a histogram) -> the count.
METRICS = f"{PREFIX}:metrics"
#: zset of samples of the queues and counters (JSON) by when they were taken (ms): the
#: dashboard's charts. Trimmed to the last hour by whoever adds one.
METRICS_HISTORY = f"{PREFIX}:metrics:history"
#: Held (briefly) by the scheduler that takes the current sample, so that two take one.
METRICS_SAMPLING = f"{PREFIX}:metrics:sampling"
#: zset: id of a parked message (a dead letter of turns) -> parked at (ms).
DEAD_TURNS = f"{PREFIX}:dead-turns"
#: sets: bots and endpoints being removed; housekeeping finishes a removal that was cut short.
REMOVING_BOTS = f"{PREFIX}:removing-bots"
REMOVING_ENDPOINTS = f"{PREFIX}:removing-endpoints"
#: hash: id of a channel being removed -> its bot's id; housekeeping finishes as above.
REMOVING_CHANNELS = f"{PREFIX}:removing-channels"
#: zset of conversation timers ("<conversation key>|offload" or "<conversation key>|resume") by
#: when they fire: an offload answer that is late, an agent who has been silent too long. In
#: shards (`shard_of`).
TIMERS = f"{PREFIX}:timers"
#: string written by /readyz to learn whether Redis takes writes (expires in 10 s).
READY_PROBE = f"{PREFIX}:ready-probe"
#: string, the deployment's secret that signs bots' button payloads (`broker.bots.payloads`),
#: made by whoever needs it first; without it, every payload sent so far reads as text.
PAYLOAD_SECRET = f"{PREFIX}:payload-secret"


# --- the scheduler's indexes, in shards -----------------------------------------------
# One shard on a single Redis (the names above); on a Redis Cluster several, each its own
# key in a slot of its own, so that no one key (nor one node) takes every conversation's
# scheduling. A conversation's entries always go to the same shard.


#: The indexes kept in shards: the scheduler's.
SHARDED = (DUE, TURNS, TIMERS)


def shard_of(index: str, member: str, shards: int) -> str:
    """The shard of `index` that holds `member`; `index` itself when it is not sharded."""
    return _shard(index, member, shards) if index in SHARDED else index


def due(member: str, shards: int) -> str:
    """The shard of DUE for `member` (a conversation key, or anything that starts with one
    followed by "|")."""
    return _shard(DUE, member, shards)


def turns(conversation_key: str, shards: int) -> str:
    return _shard(TURNS, conversation_key, shards)


def shards(index: str, count: int) -> list[str]:
    """Every shard of `index` (one of SHARDED)."""
    return [index] if count == 1 else [f"{index}:{n}" for n in range(count)]


def by_shard(index: str, members: Iterable[str], count: int) -> dict[str, list[str]]:
    """`members` of `index` grouped by the shard each belongs to."""
    grouped: dict[str, list[str]] = {}
    for member in members:
        grouped.setdefault(_shard(index, member, count), []).append(member)
    return grouped


def _shard(index: str, member: str, count: int) -> str:
    if count == 1:
        return index
    conversation_key = member.partition("|")[0]
    return f"{index}:{zlib.crc32(conversation_key.encode()) % count}"


def _bot(bot_id: str) -> str:
    return f"{PREFIX}:{{b:{bot_id}}}"


def bot(bot_id: str) -> str:
    return f"{_bot(bot_id)}:bot"


def bot_channels(bot_id: str) -> str:
    return f"{_bot(bot_id)}:channels"


def bot_verify_tokens_lock(bot_id: str) -> str:
    """Held while a channel's verify token is checked against the bot's others and written."""
    return f"{_bot(bot_id)}:verify-tokens-lock"


def bot_api_tokens(bot_id: str) -> str:
    """hash: API token id -> sha256(token), the bot's entries of API_TOKENS."""
    return f"{_bot(bot_id)}:api-tokens"


def bot_offloading(bot_id: str) -> str:
    """hash: the bot's offloading integration (apiUrl, verifyToken, endpointId, times)."""
    return f"{_bot(bot_id)}:offloading"


def bot_conversations(bot_id: str, version: str) -> str:
    """zset: `<channel id>|<conversation id>` -> last activity (ms)."""
    return f"{_bot(bot_id)}:{version}:conversations"


def bot_paused(bot_id: str, version: str) -> str:
    """zset: `<channel id>|<conversation id>` -> when the bot was paused for it (ms)."""
    return f"{_bot(bot_id)}:{version}:paused"


def bot_dead_turns(bot_id: str) -> str:
    """zset: the bot's entries of DEAD_TURNS."""
    return f"{_bot(bot_id)}:dead-turns"


def channel(channel_id: str) -> str:
    return f"{PREFIX}:channel:{channel_id}"


def _endpoint(endpoint_id: str) -> str:
    return f"{PREFIX}:{{e:{endpoint_id}}}"


def endpoint(endpoint_id: str) -> str:
    return f"{_endpoint(endpoint_id)}:endpoint"


def endpoint_health(endpoint_id: str) -> str:
    return f"{_endpoint(endpoint_id)}:health"


def endpoint_recent(endpoint_id: str) -> str:
    """list of the latest outcomes, "1" for success, "0" for failure."""
    return f"{_endpoint(endpoint_id)}:recent"


def endpoint_parked(endpoint_id: str) -> str:
    """set of delivery queues held while the endpoint is disabled."""
    return f"{_endpoint(endpoint_id)}:parked"


def endpoint_deliveries(endpoint_id: str) -> str:
    return f"{_endpoint(endpoint_id)}:deliveries"


def endpoint_dead(endpoint_id: str) -> str:
    """zset: the endpoint's dead-lettered delivery ids by time of death (as `DEAD`)."""
    return f"{_endpoint(endpoint_id)}:dead"


def heartbeats(role: str) -> str:
    """zset: process name ("<host>:<pid>") of a live worker or scheduler -> its last beat (s)."""
    return f"{PREFIX}:heartbeats:{role}"


def dashboard_session(session_hash: str) -> str:
    """hash: one dashboard login (the admin token's hash, the CSRF token, when); expires."""
    return f"{PREFIX}:dashboard-session:{session_hash}"


def auth_failures(kind: str, name: str) -> str:
    """string: failed authentications of one client address (`kind` "address") or against one
    target (`kind` "target") in the current window; expires with the window."""
    return f"{PREFIX}:auth-failures:{kind}:{name}"


def rate_limit(channel_id: str) -> str:
    return f"{PREFIX}:ratelimit:{channel_id}"


# --- per conversation (hash tag {c:<key>}) --------------------------------------------
def _conversation(conversation_key: str) -> str:
    return f"{PREFIX}:{{c:{conversation_key}}}"


def conversation_keys(conversation_key: str) -> list[str]:
    """Every key of a conversation with a fixed name (not its idempotency keys, which expire,
    nor its queues and deliveries, which belong to endpoints too)."""
    return [
        conversation_meta(conversation_key),
        conversation_inbox(conversation_key),
        conversation_pending(conversation_key),
        conversation_signals(conversation_key),
        conversation_lock(conversation_key),
        conversation_transcript(conversation_key),
        conversation_data_sizes(conversation_key),
        conversation_deliveries(conversation_key),
        conversation_last_commit(conversation_key),
    ]


def conversation_meta(conversation_key: str) -> str:
    """hash: bot, version, conversation id, channel, dialogue state, variables, counters, and
    where the handover stands (paused, offloadPending, offloadPendingAt, agentActiveAt)."""
    return f"{_conversation(conversation_key)}:meta"


def conversation_inbox(conversation_key: str) -> str:
    return f"{_conversation(conversation_key)}:inbox"


def conversation_pending(conversation_key: str) -> str:
    """Set while the conversation has a bot turn queued or running."""
    return f"{_conversation(conversation_key)}:pending"


def conversation_signals(conversation_key: str) -> str:
    """list of JSON signals for the next bot turn: offload answers, timers that fired."""
    return f"{_conversation(conversation_key)}:signals"


def conversation_lock(conversation_key: str) -> str:
    return f"{_conversation(conversation_key)}:lock"


def conversation_data_sizes(conversation_key: str) -> str:
    """hash: each `sessionData` key a message set -> its size in bytes; `sessionData` limits
    per conversation are counted on it (with the meta's `dataBytes`)."""
    return f"{_conversation(conversation_key)}:data-sizes"


def conversation_deliveries(conversation_key: str) -> str:
    """sorted set: the conversation's newest deliveries (SESSION_DELIVERIES of them) -> when
    each was made (ms); what a listing by session reads."""
    return f"{_conversation(conversation_key)}:deliveries"


def dead_turn(conversation_key: str, dead_turn_id: str) -> str:
    """hash: a parked message or signal, with the error of its last failed turn."""
    return f"{_conversation(conversation_key)}:dead-turn:{dead_turn_id}"


def conversation_last_commit(conversation_key: str) -> str:
    """string: the claim token of the conversation's last turn commit and its answer, kept
    for a claim's lease, so that the same commit sent again is answered, not made twice."""
    return f"{_conversation(conversation_key)}:last-commit"


def conversation_transcript(conversation_key: str) -> str:
    return f"{_conversation(conversation_key)}:transcript"


def idempotency(conversation_key: str, key: str) -> str:
    return f"{_conversation(conversation_key)}:idem:{key}"


def resend_guard(conversation_key: str, message_id: str) -> str:
    """On a Redis Cluster, a message with no idempotency key, by the id ingress gave it: kept
    as an idempotency key is, for CLUSTER_RESEND_WINDOW."""
    return f"{_conversation(conversation_key)}:sent:{message_id}"


def fifo(conversation_key: str, endpoint_id: str) -> str:
    return f"{_conversation(conversation_key)}:fifo:{endpoint_id}"


def fifo_lock(conversation_key: str, endpoint_id: str) -> str:
    return f"{_conversation(conversation_key)}:fifolock:{endpoint_id}"


def delivery(conversation_key: str, delivery_id: str) -> str:
    return f"{delivery_prefix(conversation_key)}{delivery_id}"


def delivery_prefix(conversation_key: str) -> str:
    """What every delivery record key of a conversation starts with (scripts that find the
    next delivery of a queue build its key from it)."""
    return f"{_conversation(conversation_key)}:delivery:"


def delivery_attempts(conversation_key: str, delivery_id: str) -> str:
    return f"{_conversation(conversation_key)}:delivery:{delivery_id}:attempts"


def glob_escaped(text: str) -> str:
    """`text` as it matches itself in a SCAN pattern: its glob characters escaped."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)
