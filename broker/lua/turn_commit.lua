-- Save a bot turn and fan its outbound documents out, all at once, if the turn still holds
-- its conversation's lock; then, when asked, end the turn if nothing is left for it.
-- KEYS[1] meta, KEYS[2] inbox, KEYS[3] transcript, KEYS[4] signals, KEYS[5] turn-pending
--   flag, KEYS[6] the conversation's lock, KEYS[7] its sessionData sizes, then per queue
--   its key and its lock's key, then per delivery its record's key, then the
--   conversation's delivery index, then its last commit's key.
-- ARGV[1] inbox messages used, ARGV[2] signals used, ARGV[3] transcript items kept,
--   ARGV[4] the turn's lock token, ARGV[5] the token to claim the queues that were empty
--   with, ARGV[6] the claim's lease (ms), ARGV[7] seconds an idle conversation is kept,
--   ARGV[8] 1 to end the turn when nothing is left for it, ARGV[9] the transcript's bytes
--   kept (its items' lengths together, counted in the meta's `transcriptBytes`: what is
--   pushed is added, what is popped taken off, so no commit reads the whole list),
--   ARGV[10] now (s), ARGV[11] the prefix of the conversation's delivery records, then
--   counted lists, each a count and its items: meta fields and values; transcript
--   entries; per queue the ids pushed on it; per delivery (in the queues' order) its
--   record's fields and values; the delivery index's entries (when made in ms, id, ...),
--   then how many it keeps.
-- Returns {-1} when the lock is not ours any more (nothing is written), else {1 if the
--   turn ended else 0, the 1-based positions of queues that were empty, those of them
--   claimed, those that were not empty, no one held, and whose head is due}.
-- The claim token names the commit: the same commit sent again (a client tries a command
-- again when its answer was lost, as on a failover) gets the first answer, and nothing is
-- written twice. Written again, a turn would trim its inbox twice, and its queues, no longer
-- empty, would not be the worker's that had claimed them: no one would work them.
-- include: chunked
local last_commit = KEYS[#KEYS]
local before = redis.call('GET', last_commit)
if before and string.sub(before, 1, #ARGV[5] + 1) == ARGV[5] .. ' ' then
  return cjson.decode(string.sub(before, #ARGV[5] + 2))
end
if redis.call('GET', KEYS[6]) ~= ARGV[4] then
  return {-1}
end
local at = 12

-- A transcript kept before its bytes were counted: its newest items within the limits are
-- counted from the tail, a page at a time, and the rest dropped at once. Returns their bytes.
local function keep_newest(key, length, keep, budget)
  local total, kept, full = 0, 0, false
  while not full and kept < length do
    local page = redis.call('LRANGE', key, -kept - 100, -kept - 1)
    for i = #page, 1, -1 do
      if kept == keep or total + #page[i] > budget then
        full = true
        break
      end
      total, kept = total + #page[i], kept + 1
    end
  end
  if kept == 0 then
    redis.call('DEL', key)
  elseif kept < length then
    redis.call('LTRIM', key, -kept, -1)
  end
  return total
end

local function take()
  local n = tonumber(ARGV[at])
  local first = at + 1
  at = at + 1 + n
  return first, n
end

local first, n = take()
if n > 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, first, first + n - 1))
end
local used, used_signals = tonumber(ARGV[1]), tonumber(ARGV[2])
if used > 0 then
  redis.call('LTRIM', KEYS[2], used, -1)
end
if used_signals > 0 then
  redis.call('LTRIM', KEYS[4], used_signals, -1)
end
first, n = take()
if n > 0 then
  local added = 0
  for i = first, first + n - 1 do
    added = added + #ARGV[i]
  end
  local length = chunked('RPUSH', KEYS[3], first, first + n - 1)
  local keep, budget = tonumber(ARGV[3]), tonumber(ARGV[9])
  local counted = redis.call('HGET', KEYS[1], 'transcriptBytes')
  local total
  if length == n then
    total = added -- a new list (the count of one that expired is stale)
  elseif counted then
    total = tonumber(counted) + added
  else
    total, length = keep_newest(KEYS[3], length, keep, budget), 0
  end
  while length > 0 and (length > keep or total > budget) do
    total = total - #redis.call('LPOP', KEYS[3])
    length = length - 1
  end
  redis.call('HSET', KEYS[1], 'transcriptBytes', total)
end
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7]}) do
  redis.call('EXPIRE', key, ARGV[7])
end

local queues = tonumber(ARGV[at])
at = at + 1
local pushed = {}
for q = 1, queues do
  first, n = take()
  local length = chunked('RPUSH', KEYS[6 + 2 * q], first, first + n - 1)
  pushed[q] = {length == n, n}
end
local fresh, claimed, unheld = {}, {}, {}
local record = 7 + 2 * queues
for q = 1, queues do
  for _ = 1, pushed[q][2] do
    record = record + 1
    first, n = take()
    redis.call('HSET', KEYS[record], unpack(ARGV, first, first + n - 1))
  end
  if pushed[q][1] then
    table.insert(fresh, q)
    if redis.call('SET', KEYS[7 + 2 * q], ARGV[5], 'NX', 'PX', ARGV[6]) then
      table.insert(claimed, q)
    end
  elseif redis.call('EXISTS', KEYS[7 + 2 * q]) == 0 then
    -- Not empty and held by no one: it waits on sb:due for a retry, or is parked, or a
    -- failover lost the write that had emptied it and its entry is gone. A head that is
    -- due is looked at now.
    local head = redis.call('LINDEX', KEYS[6 + 2 * q], 0)
    local due = redis.call('HGET', ARGV[11] .. head, 'nextAttemptAt')
    if tonumber(due or '0') <= tonumber(ARGV[10]) then
      table.insert(unheld, q)
    end
  end
end

first, n = take()
if n > 0 then
  local index = KEYS[#KEYS - 1]
  chunked('ZADD', index, first, first + n - 1)
  redis.call('ZREMRANGEBYRANK', index, 0, -1 - tonumber(ARGV[at]))
  redis.call('EXPIRE', index, ARGV[7])
end

local ended = 0
if ARGV[8] == '1' and redis.call('LLEN', KEYS[4]) == 0 then
  local waiting = redis.call('HGET', KEYS[1], 'offloadPending')
  if redis.call('LLEN', KEYS[2]) == 0 or (waiting and waiting ~= '') then
    redis.call('DEL', KEYS[5], KEYS[6])
    ended = 1
  end
end
local answer = {ended, fresh, claimed, unheld}
redis.call('SET', last_commit, ARGV[5] .. ' ' .. cjson.encode(answer), 'PX', ARGV[6])
return answer
