-- A resumed run's coordinator settles what a previous one left: it counts the attempts still
-- running under a live lease (it waits for them), or, with ARGV[1] = 'cancel', cancels every
-- attempt still queued, running or held as a dead letter (they run again under the resumed run).
-- KEYS[1] the run's set of attempts; ARGV[1] 'count' or 'cancel', ARGV[2] the prefix of
-- attempt keys
-- Returns {running with a live lease, cancelled now, now (ms)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live, cancelled = 0, 0
for _, tid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[2] .. tid
  local a = redis.call('HMGET', key, 'state', 'lease_until')
  if a[1] == 'running' and tonumber(a[2] or '0') > now then
    live = live + 1
  end
  if ARGV[1] == 'cancel' and (a[1] == 'queued' or a[1] == 'running' or a[1] == 'held') then
    redis.call('HSET', key, 'state', 'cancelled')
    cancelled = cancelled + 1
  end
end
return {live, cancelled, now}
