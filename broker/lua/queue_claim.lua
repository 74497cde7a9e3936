-- Claim a delivery queue for one worker, and read its head.
-- KEYS: the queue, its lock.  ARGV: lock token, lease (ms), the prefix of record keys.
-- A lock that already holds the token is ours (claimed for us at a bot turn's commit).
-- Returns {-1, ms} when another worker holds the queue for ms more, {0} when it is empty
--   (and let go), or {1, head id, field, value, ...}.
-- include: whole_record
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[2]) ~= ARGV[1] then
    return {-1, redis.call('PTTL', KEYS[2])}
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
while true do
  local id = redis.call('LINDEX', KEYS[1], 0)
  if not id then
    break
  end
  local fields = redis.call('HGETALL', ARGV[3] .. id)
  if whole(fields) then
    return {1, id, unpack(fields)}
  end
  redis.call('LPOP', KEYS[1])  -- its record expired or was removed
  if #fields > 0 then
    redis.call('DEL', ARGV[3] .. id)
  end
end
redis.call('DEL', KEYS[2])
return {0}
