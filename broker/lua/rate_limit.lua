-- A token bucket shared by every web process. The time is Redis's own, so the
-- clocks of the web machines do not matter.
-- KEYS: bucket hash.  ARGV: rate (tokens/s), burst, tokens wanted (a lease).
-- Returns {tokens granted (at least 1, at most wanted), 0} when allowed,
-- {0, whole seconds to wait} when not.
local DAY = 86400
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3] or '1')
local kept = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(kept[1] or burst)
local last = tonumber(kept[2] or now)
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local granted = 0
local wait = 0
if tokens >= 1 then
  granted = math.min(math.floor(tokens), wanted)
  tokens = tokens - granted
else
  wait = math.min(math.max(1, math.ceil((1 - tokens) / rate)), DAY)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
-- Once full again, the bucket is as good as none. A day at most: a rate set absurdly low
-- must not take EXPIRE past what it takes.
redis.call('EXPIRE', KEYS[1], math.min(math.ceil(burst / rate) + 1, DAY))
return {granted, wait}
