-- Park the head of a conversation's inbox or signal list, whose turn kept failing, as a
-- dead letter of turns; the conversation's failure count starts again.
-- KEYS: the list (inbox or signals), meta, the dead letter's record, the conversation lock
-- ARGV: the head as it was read, the lock token, seconds the record is kept,
--   then field, value, ... of the record
-- Returns 1 when parked, 0 when the lock or the head is not what the turn saw.
if redis.call('GET', KEYS[4]) ~= ARGV[2] then
  return 0
end
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then
  return 0
end
redis.call('LPOP', KEYS[1])
redis.call('HSET', KEYS[3], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[2], 'turnFailures', 0, 'turnFailedOn', '')
return 1
