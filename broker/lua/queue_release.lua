-- Let go of a delivery queue if it is empty and still ours.
-- KEYS: queue, queue lock.  ARGV: lock token.
-- Returns 1 when released, 0 when more deliveries wait (the caller goes on).
if redis.call('LLEN', KEYS[1]) == 0 then
  if redis.call('GET', KEYS[2]) == ARGV[1] then
    redis.call('DEL', KEYS[2])
  end
  return 1
end
return 0
