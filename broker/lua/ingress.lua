-- Queue one inbound message, unless its idempotency key was seen in the last day.
-- KEYS: idempotency key, inbox, pending flag, conversation meta
-- ARGV: message id, message JSON, idempotency TTL (s), then field, value, ... for the meta
-- Returns {1 if queued else 0, message id of record, 1 if a bot turn must be enqueued else 0}
local seen = redis.call('GET', KEYS[1])
if seen then
  return {0, seen, 0}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[4], unpack(ARGV, 4))
local fresh = redis.call('SET', KEYS[3], '1', 'NX')
if fresh then
  return {1, ARGV[1], 1}
end
return {1, ARGV[1], 0}
