-- Take the members of a schedule that are due, and push their time out by a lease,
-- so that two schedulers never hand out the same one.
-- KEYS: the sorted set.  ARGV: now, lease end, how many at most.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
