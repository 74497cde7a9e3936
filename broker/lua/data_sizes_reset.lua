-- Count toward a conversation's sessionData limits only what its waiting messages will set
-- (its variables were just forgotten), unless a message came in since they were read.
-- KEYS: meta, data sizes, inbox.
-- ARGV: the inbox's length when read, their bytes in all, the sizes' time to live (s), then
--   per variable its key and bytes.
-- Returns 1 when written, 0 (writing nothing) when the inbox has changed: read it again.
if redis.call('LLEN', KEYS[3]) ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[2])
if #ARGV > 3 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 4))
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
redis.call('HSET', KEYS[1], 'dataBytes', ARGV[2])
return 1
