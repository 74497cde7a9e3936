-- chunked(command, key, first, last): `command` on `key` with ARGV[first..last], 1,000 of
-- them at a time (an even number: field and value, score and member stay together), as
-- `unpack` of a few thousand fails ("too many results to unpack"); the last call's answer.
local function chunked(command, key, first, last)
  local answer
  for from = first, last, 1000 do
    answer = redis.call(command, key, unpack(ARGV, from, math.min(from + 999, last)))
  end
  return answer
end
