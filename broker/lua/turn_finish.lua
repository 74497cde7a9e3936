-- End a conversation's bot turn if nothing is left for it: no signal, and no message in the
-- inbox, or only messages that wait for an offload's answer.
-- KEYS: inbox, pending flag, signals, meta.
-- Returns 1 when the turn ended, 0 when more work arrived.
if redis.call('LLEN', KEYS[3]) == 0 then
  local waiting = redis.call('HGET', KEYS[4], 'offloadPending')
  if redis.call('LLEN', KEYS[1]) == 0 or (waiting and waiting ~= '') then
    redis.call('DEL', KEYS[2])
    return 1
  end
end
return 0
