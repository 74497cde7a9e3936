-- Queue one inbound message, unless its idempotency key was seen within its TTL (ARGV[3]), or
-- its sessionData would take the conversation past its limits.
-- KEYS: the two idempotency keys (the Idempotency-Key header's and the messageId's; the same
--   key twice when the message has one only; on a Redis Cluster, a message with neither has
--   one by the id ingress gave it, to find the cluster client's resends), inbox, pending
--   flag, conversation meta,
--   sessionData sizes,
--   then, on a single Redis only (other slots: a Cluster cannot take them): with a guard,
--   the settings generation and the two failed-authentication counters; the ready list
-- ARGV: message id, message JSON, idempotency TTL (s; 0: the message has no key),
--   conversation TTL (s),
--   most sessionData keys, most sessionData bytes, for the conversation,
--   a JSON object of the message's sessionData sizes {key: bytes}, the conversation key,
--   the message's fingerprint (16 characters: a repeat of its key with another message is
--   refused), the guard: the settings generation the channel was read at ('' for no guard) and the
--   counters' limits (0: none), then field, value, ... for the meta
-- Returns {1 if queued else 0, message id of record, wake}, where wake is 1 if a bot turn
-- must be enqueued, 2 if it was (on the ready list given), else 0, and, for a repeat, which
-- of the two idempotency keys was seen (1 or 2);
-- or {-1, "keys" | "bytes", what the conversation would hold} when over a limit;
-- or, with a guard, {-2} when the generation moved on (the channel must be read again),
-- {-3, milliseconds left} when a counter is at its limit;
-- or {-4, message id of record, which key (1 or 2)} when the key was seen with another
-- message.
local guarded = ARGV[10] ~= ''
if guarded then
  local current = redis.call('MGET', KEYS[7], KEYS[8], KEYS[9])
  if current[1] ~= ARGV[10] then
    return {-2}
  end
  for i = 1, 2 do
    local limit = tonumber(ARGV[10 + i])
    if limit > 0 and tonumber(current[1 + i] or '0') >= limit then
      return {-3, redis.call('PTTL', KEYS[7 + i])}
    end
  end
end
local ready = KEYS[guarded and 10 or 7]
-- A message with neither key (an idempotency TTL of 0) is not looked for nor recorded.
local keyed = ARGV[3] ~= '0'
local seen, which = false, 1
if keyed then
  seen = redis.call('GET', KEYS[1])
  if not seen then
    seen, which = redis.call('GET', KEYS[2]), 2
  end
end
if seen then
  -- What is kept: '#', the fingerprint, the message id (a bare id: kept by version 0.1).
  if string.sub(seen, 1, 1) ~= '#' or string.len(seen) < 17 then
    return {0, seen, 0, which}
  end
  local id = string.sub(seen, 18)
  if string.sub(seen, 2, 17) ~= ARGV[9] then
    return {-4, id, which}
  end
  return {0, id, 0, which}
end
-- A message that sets no sessionData (most) leaves the conversation's sizes as they are.
local changes = {}
local total
if ARGV[7] ~= '{}' then
  local count = redis.call('HLEN', KEYS[6])
  total = tonumber(redis.call('HGET', KEYS[5], 'dataBytes') or '0')
  for key, size in pairs(cjson.decode(ARGV[7])) do
    local before = redis.call('HGET', KEYS[6], key)
    if before then
      total = total - tonumber(before)
    else
      count = count + 1
    end
    total = total + size
    table.insert(changes, key)
    table.insert(changes, size)
  end
  if count > tonumber(ARGV[5]) then
    return {-1, 'keys', count}
  end
  if total > tonumber(ARGV[6]) then
    return {-1, 'bytes', total}
  end
end
if keyed then
  local kept = '#' .. ARGV[9] .. ARGV[1]
  redis.call('SET', KEYS[1], kept, 'EX', ARGV[3])
  if KEYS[2] ~= KEYS[1] then
    redis.call('SET', KEYS[2], kept, 'EX', ARGV[3])
  end
end
redis.call('RPUSH', KEYS[3], ARGV[2])
if #changes > 0 then
  redis.call('HSET', KEYS[5], 'dataBytes', total, unpack(ARGV, 13))
  redis.call('HSET', KEYS[6], unpack(changes))
  redis.call('EXPIRE', KEYS[6], ARGV[4])
else
  redis.call('HSET', KEYS[5], unpack(ARGV, 13))
end
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('EXPIRE', KEYS[5], ARGV[4])
local fresh = redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[4])
if fresh and ready then
  redis.call('RPUSH', ready, ARGV[8])
  return {1, ARGV[1], 2}
elseif fresh then
  return {1, ARGV[1], 1}
end
return {1, ARGV[1], 0}
