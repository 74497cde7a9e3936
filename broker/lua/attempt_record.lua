-- Record one attempt of a delivery and, when it is finished with, take it off its queue.
-- KEYS: delivery record, its attempt list, its queue
-- ARGV[1] delivery id, ARGV[2] attempt JSON, ARGV[3] 1 to take it off the queue,
-- ARGV[4] seconds to keep the record (0: for ever), then field, value, ... to set.
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'attemptCount', 1)
if #ARGV > 4 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 5))
end
if ARGV[3] == '1' and redis.call('LINDEX', KEYS[3], 0) == ARGV[1] then
  redis.call('LPOP', KEYS[3])
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
return 1
