-- Take conversations whose turn ended off the turn schedule, unless a message came in
-- since (an ingress moves its conversation's time past the limit).
-- KEYS: the schedule.  ARGV[1] the limit (s), then the conversation keys.
local limit = tonumber(ARGV[1])
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= limit then
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return 1
