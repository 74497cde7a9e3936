-- May we attempt a delivery to this endpoint now?
-- KEYS: health hash.  ARGV: now (s), probe lease (s), poll while another probes (s).
-- Returns {'go'}, {'disabled'}, {'wait', until} while the circuit is open, or
-- {'probing', until} while another worker is probing it (until the next poll, so that a
-- good probe frees us soon).
local h = KEYS[1]
local now = tonumber(ARGV[1])
local state = redis.call('HGET', h, 'state')
if state == 'disabled' then
  return {'disabled'}
end
if state ~= 'circuit_open' then
  return {'go'}
end
local open_until = tonumber(redis.call('HGET', h, 'circuitOpenUntil') or '0')
if now < open_until then
  return {'wait', tostring(open_until)}
end
local probe_until = tonumber(redis.call('HGET', h, 'probeUntil') or '0')
if now < probe_until then
  return {'probing', tostring(math.min(probe_until, now + tonumber(ARGV[3])))}
end
redis.call('HSET', h, 'probeUntil', now + tonumber(ARGV[2]))
return {'go'}
