-- The beats of one role that count now, at Redis's time (as `heartbeat.lua` writes them).
-- KEYS[1] the role's index.  ARGV[1] how long a beat counts (s).
-- Returns Redis's time (s, as text), then each name and its beat, the latest first.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local found = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', now - tonumber(ARGV[1]), 'WITHSCORES')
table.insert(found, 1, tostring(now))
return found
