-- Fold one attempt's outcome into an endpoint's health.
-- KEYS: health hash, recent outcomes list
-- ARGV: now (s), 1 for success or 0, error text, circuit threshold, cooldown (s),
--       cooldown cap (s), disable after (s)
-- Returns the endpoint state after the outcome.
local now = tonumber(ARGV[1])
local h = KEYS[1]
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, 99)
if redis.call('HGET', h, 'state') == 'disabled' then
  return 'disabled'
end
if ARGV[2] == '1' then
  redis.call('HSET', h, 'state', 'healthy', 'consecutiveFailures', 0, 'lastSuccessAt', now,
    'cooldown', 0, 'circuitOpenUntil', 0)
  redis.call('HDEL', h, 'failingSince', 'probeUntil')
  return 'healthy'
end
local failures = redis.call('HINCRBY', h, 'consecutiveFailures', 1)
redis.call('HSET', h, 'lastError', ARGV[3], 'lastErrorAt', now)
redis.call('HDEL', h, 'probeUntil')
local since = tonumber(redis.call('HGET', h, 'failingSince'))
if not since then
  since = now
  redis.call('HSET', h, 'failingSince', now)
end
if now - since >= tonumber(ARGV[7]) then
  redis.call('HSET', h, 'state', 'disabled', 'disabledReason',
    'no successful attempt for ' .. ARGV[7] .. ' s', 'disabledAt', now)
  return 'disabled'
end
local state = redis.call('HGET', h, 'state')
local open_until = tonumber(redis.call('HGET', h, 'circuitOpenUntil') or '0')
if state == 'circuit_open' and now < open_until then
  -- An attempt that began before the circuit opened: the circuit stays as it is.
  return 'circuit_open'
end
if state == 'circuit_open' or failures >= tonumber(ARGV[4]) then
  local cooldown = tonumber(ARGV[5])
  if state == 'circuit_open' then
    -- A failed probe: wait twice as long before the next one.
    cooldown = math.min(math.max(tonumber(redis.call('HGET', h, 'cooldown') or '0'), cooldown) * 2,
      tonumber(ARGV[6]))
  end
  redis.call('HSET', h, 'state', 'circuit_open', 'cooldown', cooldown,
    'circuitOpenUntil', now + cooldown)
  return 'circuit_open'
end
redis.call('HSET', h, 'state', 'failing')
return 'failing'
