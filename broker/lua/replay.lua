-- Put a delivery back on its queue for a fresh round of attempts.
-- KEYS: delivery record, its queue, its attempt list.
-- ARGV: delivery id, "dead" to replay it only if it is dead (a bulk replay of dead letters:
-- another one, at the same time, may have sent it again and seen it delivered).
-- Returns 1 when it was queued again, 0 when it is already on its way (or not dead).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return -1
end
if status == 'queued' or (ARGV[2] == 'dead' and status ~= 'dead') then
  return 0
end
local made = redis.call('HGET', KEYS[1], 'attemptCount') or '0'
redis.call('HSET', KEYS[1], 'status', 'queued', 'attemptBase', made)
redis.call('HDEL', KEYS[1], 'nextAttemptAt', 'deadAt', 'deliveredAt')
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[3])
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
