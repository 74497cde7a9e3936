-- Give a conversation a signal for its next bot turn (a timer that fired).
-- KEYS: the conversation's signal list, its turn-pending flag.  ARGV: the signal JSON.
-- Returns 1 when a bot turn must be woken, 0 when one is already pending.
redis.call('RPUSH', KEYS[1], ARGV[1])
if redis.call('SET', KEYS[2], '1', 'NX') then
  return 1
end
return 0
