-- Put a delivery back on its queue for a fresh round of attempts; or, one at the head of its
-- queue waiting for its next attempt, have that attempt made now. Either way its next
-- attempt is marked as the operator's (`retryNow`): an open circuit does not use it up.
-- KEYS: delivery record, its queue, its attempt list.
-- ARGV: delivery id, "dead" to replay it only if it is dead (a bulk replay of dead letters:
-- another one, at the same time, may have sent it again and seen it delivered).
-- Returns 1 when it was queued again, 2 when its next attempt was made due now, 0 when it is
-- already on its way (or not dead).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return -1
end
if ARGV[2] == 'dead' and status ~= 'dead' then
  return 0
end
if status == 'queued' then
  -- Behind an earlier delivery of its queue, it keeps its place.
  if redis.call('LINDEX', KEYS[2], 0) == ARGV[1]
    and redis.call('HDEL', KEYS[1], 'nextAttemptAt') == 1 then
    redis.call('HSET', KEYS[1], 'retryNow', '1')
    return 2
  end
  return 0
end
local made = redis.call('HGET', KEYS[1], 'attemptCount') or '0'
redis.call('HSET', KEYS[1], 'status', 'queued', 'attemptBase', made, 'retryNow', '1')
redis.call('HDEL', KEYS[1], 'nextAttemptAt', 'deadAt', 'deliveredAt')
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[3])
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
