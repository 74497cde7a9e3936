-- Take the delivery queues that are due off `sb:due` for the scheduler to hand out, each
-- under a new claim: its entry is replaced by one with a new token, a lease ahead, so that
-- two schedulers never hand out the same one and the old holder's entry is not the new one's.
-- KEYS: sb:due.  ARGV: now, lease end, how many at most, the prefix of the new tokens.
-- Returns the new entries.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local handed = {}
for i, member in ipairs(due) do
  local ref = string.match(member, '^[^#]*')
  local entry = ref .. '#' .. ARGV[4] .. i
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZADD', KEYS[1], ARGV[2], entry)
  handed[i] = entry
end
return handed
