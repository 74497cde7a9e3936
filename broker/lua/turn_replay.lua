-- Put a dead letter of turns back at the end of its conversation's inbox (or signal list)
-- and remove it.
-- KEYS: the dead letter's record, the list it goes back to, the conversation's pending flag
-- ARGV: the kind the caller read ("message" or "signal"), conversation TTL (s)
-- Returns -1 when there is no such record (or it changed), else 1 when a bot turn must
-- be woken, 0 when one is pending already.
if redis.call('HGET', KEYS[1], 'kind') ~= ARGV[1] then
  return -1
end
redis.call('RPUSH', KEYS[2], redis.call('HGET', KEYS[1], 'item'))
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[2]) then
  return 1
end
return 0
