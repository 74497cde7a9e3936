-- Record one attempt of a delivery and, when it is finished with, take it off its queue.
-- KEYS: delivery record, its attempt list, its queue; for a delivery whose end its
--   conversation waits for, also the conversation's signal list and its turn-pending flag.
-- ARGV[1] delivery id, ARGV[2] attempt JSON, ARGV[3] 1 to take it off the queue,
-- ARGV[4] seconds to keep the record (0: for ever), ARGV[5] the signal to give the conversation
-- when the delivery leaves its queue ('' for none), then field, value, ... to set.
-- Returns 2 when a bot turn must be woken for the signal, else 1.
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'attemptCount', 1)
if #ARGV > 5 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 6))
end
local woken = 1
if ARGV[3] == '1' and redis.call('LINDEX', KEYS[3], 0) == ARGV[1] then
  redis.call('LPOP', KEYS[3])
  if ARGV[5] ~= '' then
    redis.call('RPUSH', KEYS[4], ARGV[5])
    if redis.call('SET', KEYS[5], '1', 'NX') then
      woken = 2
    end
  end
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
return woken
