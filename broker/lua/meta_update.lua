-- Set fields of a conversation's meta, only while it is there: a turn that failed or lost
-- its lock because the conversation was removed under it must not bring the meta back,
-- alone and with no expiry.
-- KEYS: the meta hash.  ARGV: field, value, field, value, ...
-- Returns 1 when set, 0 when there was no meta.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
