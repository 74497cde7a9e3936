-- Take back a message that ingress.lua just queued but whose replicas did not have it in
-- time (the ingress answers 503): unless a turn took it already, it leaves the inbox and
-- its idempotency keys are forgotten, so that a refused message is not queued and its
-- retry is a new message. (The sizes of its sessionData stay counted: a retry sets the
-- same variables, in the same places.)
-- KEYS: the two idempotency keys (as ingress.lua's), inbox.
-- ARGV: the message JSON as queued, the message id.
-- Returns 1 if it was taken back, 0 if a turn had it already.
if redis.call('LREM', KEYS[3], 1, ARGV[1]) == 0 then
  return 0
end
for i = 1, 2 do
  local kept = redis.call('GET', KEYS[i])
  -- What ingress.lua keeps: '#', a 16-character fingerprint, the message id.
  if kept and string.sub(kept, 18) == ARGV[2] then
    redis.call('DEL', KEYS[i])
  end
end
return 1
