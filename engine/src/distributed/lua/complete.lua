-- Commit an attempt's outcome, fenced by its epoch: only the worker holding the current lease
-- commits, once. The outcome goes to the run's outbox in the same step.
-- KEYS[1] attempt record, KEYS[2] the run's outbox stream
-- ARGV[1] worker id, ARGV[2] epoch, ARGV[3] 'done' or 'failed', ARGV[4] result (JSON),
-- ARGV[5] error, ARGV[6] control calls (JSON), ARGV[7] duration (ms), ARGV[8] attempt id,
-- ARGV[9] run error (JSON, or empty), ARGV[10] the body's channel writes (JSON, kept for a
-- resumed run that reuses this outcome)
-- Returns 'ok' (committed now, or this very commit was already applied) or 'stale'.
local a = redis.call('HMGET', KEYS[1], 'state', 'owner', 'epoch')
if a[2] ~= ARGV[1] or a[3] ~= ARGV[2] then
  return 'stale'
end
if a[1] == ARGV[3] then
  return 'ok'
end
if a[1] ~= 'running' then
  return 'stale'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'result', ARGV[4], 'error', ARGV[5],
  'control', ARGV[6], 'duration', ARGV[7], 'run_error', ARGV[9], 'ended_ms', now,
  'ops', ARGV[10])
redis.call('XADD', KEYS[2], '*', 'k', ARGV[3], 'tid', ARGV[8], 'ep', ARGV[2], 'w', ARGV[1],
  'r', ARGV[4], 'e', ARGV[5], 'c', ARGV[6], 'd', ARGV[7], 're', ARGV[9])
return 'ok'
