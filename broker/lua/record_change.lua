-- Change a record (a hash) only while it holds what was read, and only while it is there:
-- a change never brings back a record another request removed.
-- KEYS: the record.  ARGV: field, value read ('' for none), new value, ... for every field
--   the change was computed from (those it does not change too, since it may have been
--   checked against them).
-- Returns 1 when changed; 0 when there is no record; -1, changing nothing, when a field holds
-- another value than was read (another request changed it meanwhile).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
for i = 1, #ARGV, 3 do
  if (redis.call('HGET', KEYS[1], ARGV[i]) or '') ~= ARGV[i + 1] then
    return -1
  end
end
for i = 1, #ARGV, 3 do
  if ARGV[i + 1] ~= ARGV[i + 2] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  end
end
return 1
