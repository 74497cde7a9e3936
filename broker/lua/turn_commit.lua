-- Save a bot turn and fan its outbound documents out, all at once.
-- KEYS[1] meta, KEYS[2] inbox, KEYS[3] transcript, KEYS[4] signals, then per delivery its
-- queue key and its record key.
-- ARGV[1] a JSON plan: {"meta": [field, value, ...], "trim": n, "trimSignals": n,
--   "transcript": [entry, ...],
--   "transcriptMax": n, "deliveries": [{"id": id, "fields": [field, value, ...]}, ...]}
-- Returns the 1-based positions of deliveries whose queue was empty before.
local plan = cjson.decode(ARGV[1])
if #plan.meta > 0 then
  redis.call('HSET', KEYS[1], unpack(plan.meta))
end
if plan.trim > 0 then
  redis.call('LTRIM', KEYS[2], plan.trim, -1)
end
if plan.trimSignals > 0 then
  redis.call('LTRIM', KEYS[4], plan.trimSignals, -1)
end
for _, entry in ipairs(plan.transcript) do
  redis.call('RPUSH', KEYS[3], entry)
end
if plan.transcriptMax > 0 then
  redis.call('LTRIM', KEYS[3], -plan.transcriptMax, -1)
end
local fresh = {}
for i, d in ipairs(plan.deliveries) do
  local queue = KEYS[3 + 2 * i]
  local record = KEYS[4 + 2 * i]
  redis.call('HSET', record, unpack(d.fields))
  if redis.call('RPUSH', queue, d.id) == 1 then
    table.insert(fresh, i)
  end
end
return fresh
