-- End a session's bot turn if nothing is waiting in its inbox.
-- KEYS: inbox, pending flag.  Returns 1 when the turn ended, 0 when more work arrived.
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
