-- Record one attempt of a delivery, if its queue is still ours, and say what comes next.
-- KEYS: the delivery's record, its attempt list, its queue, the queue's lock; for a
--   delivery whose end its conversation waits for, also the conversation's signal list
--   and turn-pending flag.
-- ARGV[1] delivery id, ARGV[2] attempt JSON, ARGV[3] 'leaves' (delivered or dead: it
--   leaves its queue) or 'waits' (tried again later: the queue is let go meanwhile),
--   ARGV[4] seconds to keep the record (0: for ever), ARGV[5] the signal to give the
--   conversation when it leaves ('' for none), ARGV[6] our lock token, ARGV[7] the lock's
--   lease (ms), ARGV[8] the prefix of record keys, then field, value, ... to set.
-- Returns {-1} when the queue is no longer ours, or the record is gone (its endpoint or
--   conversation was removed during the attempt): nothing is recorded; otherwise
--   {0, wake} when the queue is let go, or {1, wake, next id, field, value, ...} with the
--   queue still ours and its next delivery; wake is 1 when a bot turn must be woken.
-- include: whole_record
if redis.call('GET', KEYS[4]) ~= ARGV[6] then
  return {-1}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- Writing to it would bring back a record of no kind, without an expiry, for ever.
  if redis.call('LINDEX', KEYS[3], 0) == ARGV[1] then
    redis.call('LPOP', KEYS[3])
  end
  redis.call('DEL', KEYS[4])
  return {-1}
end
-- The same attempt sent again (a cluster's client does when an answer was lost) is counted
-- once; the rest is the same either way.
local resent = redis.call('LINDEX', KEYS[2], -1) == ARGV[2]
if not resent then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'attemptCount', 1)
end
redis.call('HDEL', KEYS[1], 'retryNow')
if #ARGV > 8 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 9))
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
local wake = 0
if ARGV[3] == 'leaves' then
  if redis.call('LINDEX', KEYS[3], 0) == ARGV[1] then
    redis.call('LPOP', KEYS[3])
  end
  if ARGV[5] ~= '' and not resent then
    redis.call('RPUSH', KEYS[5], ARGV[5])
    if redis.call('SET', KEYS[6], '1', 'NX') then
      wake = 1
    end
  elseif ARGV[5] ~= '' then
    wake = 1  -- whether the first one woke the turn was lost with its answer
  end
  while true do
    local id = redis.call('LINDEX', KEYS[3], 0)
    if not id then
      break
    end
    local fields = redis.call('HGETALL', ARGV[8] .. id)
    if whole(fields) then
      redis.call('PEXPIRE', KEYS[4], ARGV[7])
      return {1, wake, id, unpack(fields)}
    end
    redis.call('LPOP', KEYS[3])  -- its record expired or was removed
    if #fields > 0 then
      redis.call('DEL', ARGV[8] .. id)
    end
  end
end
redis.call('DEL', KEYS[4])
return {0, wake}
