-- Drop dead-letter index entries of deliveries found not dead (a replay cut short between
-- its scripts and its removal of them leaves such entries), each only while its time is
-- still the one read: a delivery that died again meanwhile keeps its new entry.
-- KEYS[1] the index.  ARGV: a delivery id and the time read (ms), then the next, ...
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return 1
