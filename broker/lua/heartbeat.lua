-- A process's beat, at Redis's time: a process whose clock is off is still counted, and
-- drops only the entries of those that stopped beating.
-- KEYS[1] the role's index.  ARGV[1] the process name, ARGV[2] how long a beat counts (s).
-- Returns Redis's time (s, as text: a number reply would lose its fraction).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return tostring(now)
