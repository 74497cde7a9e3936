"""Documented defaults. Those that `broker.core.settings.Settings` holds can be changed through
the environment (see the README's Environment table)."""

#: Redis for data and queues, when REDIS_URL is not set.
REDIS_URL = "redis://127.0.0.1:6379/0"
#: The master's name that `sentinel://` URLs ask Sentinel for.
SENTINEL_MASTER = "mymaster"

#: Base of the `messagesUrl` handed to channels.
PUBLIC_URL = "http://127.0.0.1:8080"

#: Seconds before each attempt of a delivery: the first is immediate, then 5 s, 30 s,
#: 2 min, 10 min, 30 min, 1 h, 3 h, 6 h and 12 h, about 23 h in all (docs/wire-contract.md §5).
RETRY_SCHEDULE: tuple[float, ...] = (0, 5, 30, 120, 600, 1800, 3600, 10800, 21600, 43200)

#: Each retry delay is moved at random by up to this fraction, either way, so that
#: a crowd of failed deliveries does not come back at the same instant.
RETRY_JITTER = 0.2

#: The longest wait a `Retry-After` header can impose, in seconds.
RETRY_AFTER_CAP = 3600.0

#: Outbound HTTP timeouts, in seconds: to connect, and for the whole attempt.
CONNECT_TIMEOUT = 3.0
TOTAL_TIMEOUT = 10.0

#: How much of an endpoint's answer the attempt log keeps, in bytes.
RESPONSE_EXCERPT_BYTES = 4096
#: The outbound HTTP client reads at most this much of an answer (bytes); past it the
#: connection is closed (an offloading integration's answer that long is refused).
MAX_READ_BYTES = 64 * 1024

#: An endpoint that fails this long without a single success is disabled (seconds).
DISABLE_AFTER = 24 * 3600.0

#: The circuit breaker opens after this many failures in a row ...
CIRCUIT_THRESHOLD = 10
#: ... for this long at first (seconds), doubling on each failed probe up to the cap.
CIRCUIT_COOLDOWN = 30.0
CIRCUIT_COOLDOWN_MAX = 600.0
#: While one worker probes an endpoint whose circuit is open, the others ask again this
#: often (seconds), so that they go on as soon as the probe succeeds.
CIRCUIT_PROBE_POLL = 1.0

#: Attempt logs and delivered deliveries are kept this long (seconds).
LOG_RETENTION = 7 * 24 * 3600.0
#: Dead letters are kept this long (seconds), unless replayed sooner.
DEAD_RETENTION = 30 * 24 * 3600.0

#: A worker holds a conversation or a delivery queue for this long (seconds) before the
#: scheduler assumes it died and hands the work to another; renewed while it works.
CLAIM_LEASE = 30.0

#: How long a management request waits for a bot turn to let go of its conversation
#: (seconds), before it answers that the conversation is busy (409).
CONVERSATION_LOCK_WAIT = 5.0

#: A worker told to stop (SIGTERM) lets its running turns commit and its attempts in flight
#: end, for up to this long (seconds), and hands its other delivery queues back at once;
#: what is still running then is left to the claims' end, as if it had been killed.
SHUTDOWN_GRACE = 8.0
#: How long Celery may take, once a worker is told to stop, to begin its shutdown, before the
#: worker's watchdog stops Switchboard's part without it (seconds; `workers.worker`).
CELERY_STOP_WAIT = 5.0

#: Celery's broker is shown as failing for this long after it last refused a task (seconds).
BROKER_TROUBLE_SHOWN = 60

#: How often the scheduler looks for due retries and expired claims (seconds).
SCHEDULER_INTERVAL = 0.2
#: How often the scheduler drops index entries of what expired and finishes removals that
#: were cut short (seconds).
HOUSEKEEPING_INTERVAL = 300.0
#: The scheduler hands out due work in batches of this many: due delivery queues taken from
#: one index shard at once, and sent to one delivery task ...
SCHEDULER_BATCH = 50
#: ... and at most this many batches of each kind of work in one pass: delivery queues (of
#: each index shard), bot turns and timers (SCHEDULER_BATCH * SCHEDULER_PASS_BATCHES of each
#: shard); what is left waits for the next pass.
SCHEDULER_PASS_BATCHES = 20

#: A bot turn reads at most this many waiting messages of its conversation at once.
TURN_BATCH = 50
#: A delivery task sends at most this many deliveries of one queue before yielding.
DELIVERIES_PER_CLAIM = 100
#: Delivery queues a worker process works at once on its delivery loop (so this many
#: attempts in flight at most, over keep-alive connections).
DELIVERY_CONCURRENCY = 512
#: At most this many of them go to one endpoint, so that an endpoint that hangs
#: leaves the others room; the rest of its queues wait their turn.
ENDPOINT_CONCURRENCY = 64
#: Threads of a worker process that run bot turns, each a batch of conversations at once.
TURN_RUNNERS = 4
#: Turn runners of a worker process that may wait on bots' API calls or custom actions at
#: once, each replaced meanwhile by a new runner so that the ready list is still served.
#: Past it, a turn about to wait is put off: it stops before the message that waits, and
#: its conversation comes back TURN_PUT_OFF seconds later, so that the ready list is still
#: served (a waiting runner would hold up every conversation behind it).
TURN_RUNNERS_AWAY = 128
TURN_PUT_OFF = 1.0

#: Idempotency keys are remembered this long (seconds).
IDEMPOTENCY_TTL = 24 * 3600
#: The longest `Idempotency-Key` header or `messageId` a message may carry (characters): each
#: is part of a Redis key's name.
IDEMPOTENCY_KEY_MAX = 256

#: Replicas that must have a message before the ingress acknowledges it: Redis's `WAIT`,
#: sent after the message's write in the same round trip. 0: acknowledged once the master
#: has it (replication is asynchronous, and a failover can lose what the replicas lacked) ...
INGRESS_REPLICAS = 0
#: ... and how long the ingress waits for them (seconds) before it answers 503.
INGRESS_REPLICA_WAIT = 0.5

#: Largest request body the ingress accepts, in bytes.
MAX_BODY_BYTES = 1024 * 1024

#: Arrays and objects a JSON document from outside may hold inside one another
#: (`broker/core/strict_json.py`): far past any real message or bot definition, well short
#: of what recursive code can walk.
JSON_MAX_DEPTH = 100

#: Channels a web process keeps after authenticating them, so that a message of one needs a
#: single round trip to Redis (`broker/channels/channel_cache.py`); on a single Redis only.
CHANNEL_CACHE_SIZE = 10_000

#: Inbound messages a channel may send per second, and the burst above it
#: (docs/wire-contract.md §1c); a channel's own `rateLimit` overrides the rate, and its
#: burst then keeps the same proportion.
RATE_LIMIT_PER_SECOND = 1000
RATE_LIMIT_BURST = 2000
#: The lowest rate limit a channel may have (messages/s), but 0 (none): one message in
#: about 17 minutes.
RATE_LIMIT_MIN = 0.001
#: A web process takes a channel's tokens from the shared bucket this many at a time at
#: most (one per 1/RATE_LIMIT_LEASE_SHARE of the rate, so slow channels are counted one
#: by one), and spends them within RATE_LIMIT_LEASE_SECONDS or lets them go: one round
#: trip to Redis per lease instead of one per message.
RATE_LIMIT_LEASE_MAX = 20
RATE_LIMIT_LEASE_SHARE = 50
RATE_LIMIT_LEASE_SECONDS = 0.5

#: `sessionData` limits (docs/wire-contract.md §1a): keys and bytes (as compact UTF-8 JSON,
#: keys included) that one message may carry ...
SESSION_DATA_KEYS = 100
SESSION_DATA_BYTES = 16 * 1024
#: ... and that one conversation may hold, counting what every message set (422 past them).
CONVERSATION_DATA_KEYS = 1000
CONVERSATION_DATA_BYTES = 256 * 1024

#: A value the bot engine writes into a conversation's variable (a `set` filled in, what an
#: API call's `save` or a custom action gives) may take this many bytes, as UTF-8 text or
#: compact UTF-8 JSON; past it the turn fails, and the message is parked as a dead letter of
#: turns after its tries. Generous: four times what one message's `sessionData` may carry,
#: six times its longest text; without it a `set` that doubles a value in a loop of states
#: grows it past any memory within one message.
VARIABLE_MAX_BYTES = 64 * 1024
#: A conversation's variables together (all of them: what its messages set, the bot's
#: constants, what the bot set) may take this many bytes, as one compact UTF-8 JSON object,
#: names included. Measured once per bot turn, as it ends: a turn that leaves them over it,
#: and larger than it found them, fails as an oversized value does (its message, after its
#: tries, is parked as a dead letter of turns); one that does not grow them is let be, so
#: that a conversation over it (the limit was lowered) can still shrink. Four times what the
#: messages' `sessionData` may add up to, so that the rest is the bot's own; `switchboard bot
#: test` holds to this default.
CONVERSATION_VARIABLES_BYTES = 1024 * 1024
#: What the engine fills in for one message's answer, together: its messages, events,
#: offload and API requests (the same bytes; the same failure past them). As large as a
#: request body the web takes; far past what any channel shows.
ANSWER_MAX_BYTES = 1024 * 1024
#: Messages one answer of the bot may send, those of its custom actions with them; an
#: action whose messages would go past it takes its `onError` branch. Far past what any
#: channel shows in a row; each is a delivery of its own.
ANSWER_MAX_MESSAGES = 100

#: A conversation idle this long (seconds) is forgotten, with its transcript, variables
#: and index entries.
CONVERSATION_TTL = 30 * 24 * 3600.0

#: A message whose bot turn fails this many times is parked as a dead letter of turns,
#: and the conversation goes on with its next message ...
TURN_ATTEMPTS = 3
#: ... each failed try waiting this long (seconds) before the next.
TURN_RETRY_DELAY = 5.0

#: Failed authentications one client address may make within the window before it is
#: answered 429, and those against one target (a channel, a bot's verify tokens, the
#: admin token) from everywhere together. The second is off (0): past it everyone is
#: refused, the right token too, so whoever knows a channel's id could lock its
#: integration out; tokens are long and random, which is what stops guessing.
AUTH_FAILURES = 20
AUTH_FAILURES_PER_TARGET = 0
AUTH_FAILURE_WINDOW = 60.0

#: Shortest admin token the web process starts with. A channel's verify token may be of
#: any length, as on the hosted platform, where the customer chose it: a migrating
#: integration keeps its own. Left out, one of 16 random characters is made.
ADMIN_TOKEN_MIN_LENGTH = 32
#: The lock on a bot's verify tokens while one is checked and written (`channel_store`):
#: how long it lasts should its holder die, and how long another call waits for it (s).
VERIFY_TOKENS_LOCK_LEASE = 10.0
VERIFY_TOKENS_LOCK_WAIT = 5.0

#: What a 503 answer's `Retry-After` says when Redis is unreachable, read-only or full (s).
UNAVAILABLE_RETRY_AFTER = 5
#: A web process waits this long (s) for Redis to connect or answer a command, before it
#: answers 503 (the other roles wait REDIS_SOCKET_TIMEOUT): a web process answers its message
#: routes on one event loop, which a command waiting for a stalled Redis holds.
WEB_REDIS_TIMEOUT = 2.0
#: Once a web process finds Redis unreachable, it answers the requests that need Redis 503
#: at once for this long (s), then lets one through to try Redis again (`web/redis_gate.py`).
REDIS_GATE_WINDOW = 1.0

#: A signing secret that was rotated out still signs for this long (seconds).
SECRET_ROTATION_OVERLAP = 24 * 3600
#: Rotated-out secrets that sign beside the current one, at most: the newest.
ROTATED_SECRETS_KEPT = 5

#: Where `switchboard run` keeps its embedded Redis when no REDIS_URL is given.
DATA_DIR = "switchboard-data"

#: Web port of `switchboard run` and `switchboard web`.
PORT = 8080

#: Heartbeats older than this (seconds) mean the process is gone, for /readyz.
HEARTBEAT_TTL = 15
#: A process whose clock is further than this from Redis's (seconds) says so in its log, and
#: goes by Redis's clock (`clock.follow`).
CLOCK_SKEW_WARNING = 2.0
#: A role's loop that has not gone round for this long (seconds) is stuck: its heartbeat
#: stops, so /readyz does not count it. Longer than a command that times out, and its pause.
LOOP_STUCK_AFTER = 30.0
#: How often a worker's event loop (deliveries, bots' API calls) marks that it goes round (s).
LOOP_MARK_EVERY = 5.0

#: Whether processes count events for /metrics (SWITCHBOARD_METRICS=0 turns it off).
METRICS = True
#: Whether inbound messages are counted by channel id (SWITCHBOARD_METRICS_PER_CHANNEL=0
#: counts every channel's as channel="all").
METRICS_PER_CHANNEL = True
#: Each process adds what it counted to Redis this often (seconds), in one round trip.
METRICS_FLUSH_INTERVAL = 1.0
#: The scheduler keeps a sample of the queues and counters this often (seconds) ...
METRICS_SAMPLE_INTERVAL = 10.0
#: ... for this long (seconds): the dashboard's charts.
METRICS_HISTORY = 3600.0

#: Log lines are JSON objects, one per event ("json"), or plain text for people ("text").
LOG_FORMAT = "json"
#: The least severe events logged: DEBUG, INFO, WARNING, ERROR or CRITICAL.
LOG_LEVEL = "INFO"

#: A dashboard login lasts this long (seconds).
DASHBOARD_SESSION_TTL = 12 * 3600

#: Redis connections one process keeps at most; a thread past them waits ...
REDIS_CONNECTIONS = 512
#: ... this long (seconds) for a free one before it fails.
REDIS_CONNECTION_WAIT = 20.0
#: Every Redis connection (ours and Celery's) gives up connecting after this long
#: (seconds) ...
REDIS_CONNECT_TIMEOUT = 5.0
#: ... and waiting for an answer after this long: a Redis gone without closing the
#: connection (a failover, a NAT or firewall that forgot it) fails the command instead of
#: holding its thread for ever. Above the turn runners' BLPOP wait (1 s).
REDIS_SOCKET_TIMEOUT = 10.0
#: An idle connection is checked with a PING before its next command after this long
#: (seconds) ...
REDIS_HEALTH_CHECK_INTERVAL = 10
#: ... and by TCP keepalive probes, a connection no longer answering dropped within about
#: 25 s: first probe after 10 idle seconds, then every 5 s, 3 unanswered ones.
REDIS_KEEPALIVE = {"TCP_KEEPIDLE": 10, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}
#: Shards of the scheduler's indexes on a Redis Cluster (on a single Redis there is one):
#: enough to spread them over the masters of a large cluster.
CLUSTER_INDEX_SHARDS = 16
#: Tries of a Redis Cluster command that finds a node down or a slot moving, with backoff
#: up to a second between them: long enough for a replica to take over a failed master.
CLUSTER_RETRIES = 10
#: How long a message with no idempotency key is remembered by its own id on a Redis Cluster
#: (seconds): the cluster's client sends a command again when its answer was lost, and the
#: resend must find the message queued. Longer than CLUSTER_RETRIES' backoff in all.
CLUSTER_RESEND_WINDOW = 60

#: An offload that has no answer this long after the dialogue asked for it has failed
#: (seconds): the user gets the bot's "offloading failed" state, and the offload, if it
#: was not sent yet, is dead-lettered instead.
OFFLOAD_TIMEOUT = 60.0

#: A paused conversation whose agent has said nothing for this long goes back to the bot
#: (seconds).
RESUME_AFTER = 24 * 3600.0

#: Modules (comma-separated) whose functions bot definitions may run as custom actions
#: (`broker.bots.custom_actions`); none by default.
ACTION_MODULES = ""

#: A conversation's transcript keeps this many items, the newest.
TRANSCRIPT_MAX = 5000
#: ... and its items together take at most this many bytes (each as stored, UTF-8 JSON); a
#: commit that takes it past either limit drops the oldest items until it is within both,
#: and an item larger than this alone is not kept. An `offload` event carries what the
#: transcript keeps, so this bounds its body too (with the action's payload). A thousand
#: items of 1 KB; about a hundred of the longest (10,000-character) user messages.
TRANSCRIPT_BYTES = 1024 * 1024
#: A listing of deliveries by session finds this many of each conversation's, the newest
#: (older ones are still listed by endpoint, status and time, and read by id).
SESSION_DELIVERIES = 1000
