-- Enqueue one task attempt, idempotently on its key (run:task:cycle:attempt).
-- KEYS[1] coordinator lease, KEYS[2] attempt record, KEYS[3] the run's set of attempts
-- ARGV[1] coordinator epoch, ARGV[2] payload (JSON), ARGV[3] queue, ARGV[4] retention (ms),
-- ARGV[5] the attempt id, ARGV[6] how long (ms) a running attempt's lease may have been
-- expired before it counts as lost and is queued again ('0': never; the coordinator's sweep
-- catches attempts whose queue entry is gone, which no reaper can see), ARGV[7] the ids of
-- the results the attempt reads as inputs (a JSON list; `start` returns their values)
-- Returns {'fenced', epoch} when another coordinator drives the run; {'nolease'} when the
-- lease record is gone (Redis lost it: the coordinator renews it, then enqueues again);
-- {'terminal', state, result, error, control, worker, duration, run_error, ended_ms, ops} when
-- the attempt already has its committed outcome (a resumed run reuses it, and replays its
-- channel writes when it was committed before the run's channel was restored);
-- {'pending', state} when it is queued or running already, or dead-lettered and held for an
-- operator ('held', until its hold runs out: then it is dead); {'queued'} when (re)queued now:
-- the caller then adds it to the queue's stream.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  return {'nolease'}
end
if epoch ~= ARGV[1] then
  return {'fenced', epoch or ''}
end
local a = redis.call('HMGET', KEYS[2], 'state', 'lease_until', 'held_until')
local state = a[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if state == 'held' then
  -- Dead-lettered and held for an operator: still waiting until its hold runs out, dead after.
  if tonumber(a[3] or '0') > now then
    return {'pending', 'held'}
  end
  redis.call('HSET', KEYS[2], 'state', 'dead', 'ended_ms', now)
  state = 'dead'
end
if state == 'done' or state == 'failed' or state == 'dead' then
  local r = redis.call('HMGET', KEYS[2], 'state', 'result', 'error', 'control', 'owner',
    'duration', 'run_error', 'ended_ms', 'ops')
  return {'terminal', r[1], r[2] or '', r[3] or '', r[4] or '', r[5] or '', r[6] or '',
    r[7] or '', r[8] or '', r[9] or ''}
end
if state == 'running' and ARGV[6] ~= '0' then
  if tonumber(a[2] or '0') + tonumber(ARGV[6]) < now then
    -- Nobody renewed it for that long: its holder is gone (the epoch fences it off).
    redis.call('HINCRBY', KEYS[2], 'epoch', 1)
    redis.call('HSET', KEYS[2], 'state', 'queued', 'owner', '')
    return {'queued'}
  end
end
if state == 'queued' or state == 'running' then
  return {'pending', state}
end
local us = t[1] .. string.format('%06d', tonumber(t[2]))
if state then
  redis.call('HSET', KEYS[2], 'state', 'queued', 'payload', ARGV[2], 'queue', ARGV[3],
    'owner', '', 'deliveries', 0, 'enqueued_ms', now, 'enqueued_us', us, 'inputs', ARGV[7])
else
  redis.call('HSET', KEYS[2], 'state', 'queued', 'payload', ARGV[2], 'queue', ARGV[3],
    'owner', '', 'deliveries', 0, 'enqueued_ms', now, 'enqueued_us', us, 'inputs', ARGV[7],
    'epoch', 0)
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
-- The set of attempts expires with the run (the coordinator sets its expiry).
redis.call('SADD', KEYS[3], ARGV[5])
return {'queued'}
