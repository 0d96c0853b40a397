-- An operator requeues a dead letter its run still holds (the coordinator's `hold_ms`).
-- KEYS[1] attempt record, KEYS[2] coordinator lease, KEYS[3] the run's outbox stream
-- ARGV[1] the attempt id, ARGV[2] who requeues it (shown in the run's log)
-- Returns {'queued', queue}: the attempt waits on its queue again with its deliveries counted
-- from zero, and the caller adds it to the queue's stream; or {'no', why}.
local a = redis.call('HMGET', KEYS[1], 'state', 'held_until', 'queue')
local state = a[1]
if not state then
  return {'no', 'its run no longer records the attempt (it expired or the run was deleted)'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if state == 'queued' or state == 'running' then
  return {'no', 'it was requeued already (it is ' .. state .. ')'}
end
if state == 'dead' or (state == 'held' and tonumber(a[2] or '0') <= now) then
  return {'no', 'its run no longer waits for it: the attempt failed (hold dead letters longer ' ..
    'with GRAFLOW_DEAD_LETTER_HOLD on the run\'s coordinator)'}
end
if state ~= 'held' then
  return {'no', 'the attempt is ' .. state}
end
local c = redis.call('HMGET', KEYS[2], 'state', 'until')
if c[1] ~= 'running' or tonumber(c[2] or '0') < now then
  return {'no', 'its run has no live coordinator'}
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'owner', '', 'deliveries', 0, 'held_until', '',
  'enqueued_ms', now, 'enqueued_us', t[1] .. string.format('%06d', tonumber(t[2])))
redis.call('XADD', KEYS[3], '*', 'k', 'requeued', 'tid', ARGV[1], 'w', ARGV[2])
return {'queued', a[3] or 'default'}
