-- Fold attempts' outcomes, in the order they ended, into an endpoint's health.
-- KEYS: health hash, recent outcomes list, the endpoint's record
-- ARGV: circuit threshold, cooldown (s), cooldown cap (s), disable after (s), then per
--       run of outcomes: when the last ended (s), 1 for success or 0, error text, how many
--       in a row (successes in a row come as one run; failures one by one)
-- Returns the endpoint state after them, or 'removed' (writing nothing) when the endpoint
-- went while the attempts were out.
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 'removed'
end
local h = KEYS[1]
local threshold, first_cooldown = tonumber(ARGV[1]), tonumber(ARGV[2])
local cooldown_cap, disable_after = tonumber(ARGV[3]), tonumber(ARGV[4])

local function fold(now, ok, error)
  local before = redis.call('HGET', h, 'state')
  if before == 'disabled' then
    return 'disabled'
  end
  if ok == '1' then
    redis.call('HSET', h, 'state', 'healthy', 'consecutiveFailures', 0, 'lastSuccessAt', now,
      'cooldown', 0, 'circuitOpenUntil', 0)
    -- A healthy endpoint has neither: only failures and an open circuit's probe set them.
    if before ~= 'healthy' then
      redis.call('HDEL', h, 'failingSince', 'probeUntil')
    end
    return 'healthy'
  end
  local failures = redis.call('HINCRBY', h, 'consecutiveFailures', 1)
  redis.call('HSET', h, 'lastError', error, 'lastErrorAt', now)
  redis.call('HDEL', h, 'probeUntil')
  local since = tonumber(redis.call('HGET', h, 'failingSince'))
  if not since then
    since = now
    redis.call('HSET', h, 'failingSince', now)
  end
  if now - since >= disable_after then
    redis.call('HSET', h, 'state', 'disabled', 'disabledReason',
      'no successful attempt for ' .. ARGV[4] .. ' s', 'disabledAt', now)
    return 'disabled'
  end
  local state = redis.call('HGET', h, 'state')
  local open_until = tonumber(redis.call('HGET', h, 'circuitOpenUntil') or '0')
  if state == 'circuit_open' and now < open_until then
    -- An attempt that began before the circuit opened: the circuit stays as it is.
    return 'circuit_open'
  end
  if state == 'circuit_open' or failures >= threshold then
    local cooldown = first_cooldown
    if state == 'circuit_open' then
      -- A failed probe: wait twice as long before the next one.
      cooldown = math.min(
        math.max(tonumber(redis.call('HGET', h, 'cooldown') or '0'), cooldown) * 2, cooldown_cap)
    end
    redis.call('HSET', h, 'state', 'circuit_open', 'cooldown', cooldown,
      'circuitOpenUntil', now + cooldown)
    return 'circuit_open'
  end
  redis.call('HSET', h, 'state', 'failing')
  return 'failing'
end

-- The latest outcomes, newest first, kept to the last 100.
local recent = {}
local state = 'healthy'
for i = 5, #ARGV, 4 do
  for _ = 1, math.min(tonumber(ARGV[i + 3]), 100) do
    table.insert(recent, ARGV[i + 1])
  end
  state = fold(tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2])
end
for first = math.max(1, #recent - 99), #recent, 100 do
  redis.call('LPUSH', KEYS[2], unpack(recent, first, math.min(first + 99, #recent)))
end
redis.call('LTRIM', KEYS[2], 0, 99)
return state
