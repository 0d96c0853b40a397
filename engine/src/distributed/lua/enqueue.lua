-- Enqueue one task attempt, idempotently on its key (run:task:cycle:attempt).
-- KEYS[1] coordinator lease, KEYS[2] attempt record
-- ARGV[1] coordinator epoch, ARGV[2] payload (JSON), ARGV[3] queue, ARGV[4] retention (ms)
-- Returns {'fenced', epoch} when another coordinator drives the run;
-- {'terminal', state, result, error, control, worker, duration, run_error} when the attempt
-- already has its committed outcome (a resumed run reuses it);
-- {'pending', state} when it is queued or running already; {'queued'} when (re)queued now:
-- the caller then adds it to the queue's stream.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch ~= ARGV[1] then
  return {'fenced', epoch or ''}
end
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'done' or state == 'failed' or state == 'dead' then
  local r = redis.call('HMGET', KEYS[2], 'state', 'result', 'error', 'control', 'owner', 'duration', 'run_error')
  return {'terminal', r[1], r[2] or '', r[3] or '', r[4] or '', r[5] or '', r[6] or '', r[7] or ''}
end
if state == 'queued' or state == 'running' then
  return {'pending', state}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[2], 'state', 'queued', 'payload', ARGV[2], 'queue', ARGV[3],
  'owner', '', 'deliveries', 0, 'enqueued_ms', now)
if not state then
  redis.call('HSET', KEYS[2], 'epoch', 0)
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {'queued'}
