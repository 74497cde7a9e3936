-- Drop or move entries of an index, each only while its score is still the one read: an
-- entry written again meanwhile (a delivery that died again, or ended again) keeps its new
-- score.
-- KEYS[1] the index.  ARGV: a member, the score read, and its new score ('' to drop it),
-- then the next, ...
for i = 1, #ARGV, 3 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    if ARGV[i + 2] == '' then
      redis.call('ZREM', KEYS[1], ARGV[i])
    else
      redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    end
  end
end
return 1
