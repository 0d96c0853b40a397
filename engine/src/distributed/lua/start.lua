-- A worker takes an attempt it read from its queue.
-- KEYS[1] attempt record, KEYS[2] coordinator lease, KEYS[3] the run's outbox stream,
-- KEYS[4] the run's results
-- ARGV[1] worker id, ARGV[2] lease (ms), ARGV[3] delivery cap, ARGV[4] attempt id,
-- ARGV[5] the queue entry's id
-- Returns {'run', epoch, payload, deliveries, enqueued_ms, now, input…} (the epoch fences every
-- later step; the inputs are the JSON results named by the record's `inputs` list, in its
-- order, nil for one not recorded), or a reason to skip the entry: 'gone', 'terminal', 'busy'
-- (a duplicate entry of an attempt another worker holds), 'dropped' (the run was cancelled or its coordinator is gone),
-- 'dead' (delivered more often than the cap: dead-lettered, reported to the coordinator; when
-- the run's coordinator holds dead letters (`hold_ms` on its lease), the attempt is 'held' until
-- then for an operator to requeue it, and fails after).
local a = redis.call('HMGET', KEYS[1], 'state', 'lease_until', 'deliveries', 'epoch', 'enqueued_ms',
  'owner', 'entry', 'payload', 'inputs')
local function running(epoch, deliveries, enqueued, now)
  local reply = {'run', epoch, a[8], deliveries, enqueued, tostring(now)}
  local ids = a[9]
  if ids and ids ~= '' and ids ~= '[]' then
    -- Task ids only: no value is decoded here.
    local list = cjson.decode(ids)
    for first = 1, #list, 1000 do
      local values = redis.call('HMGET', KEYS[4], unpack(list, first, math.min(first + 999, #list)))
      for i = 1, #values do
        reply[6 + first - 1 + i] = values[i]
      end
    end
  end
  return reply
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = a[1]
if not state then
  return {'gone'}
end
if state ~= 'queued' and state ~= 'running' then
  return {'terminal', state}
end
if state == 'running' and a[6] == ARGV[1] and a[7] == ARGV[5] then
  -- This very start, retried after its reply was lost: the same epoch, the lease renewed.
  redis.call('HSET', KEYS[1], 'lease_until', now + tonumber(ARGV[2]))
  return running(a[4], a[3], a[5] or '', now)
end
if state == 'running' and tonumber(a[2] or '0') > now then
  return {'busy'}
end
local c = redis.call('HMGET', KEYS[2], 'state', 'until', 'hold_ms')
if c[1] == 'cancelled' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled')
  return {'dropped', 'the run was cancelled'}
end
if c[1] ~= 'running' or tonumber(c[2] or '0') < now then
  redis.call('HSET', KEYS[1], 'state', 'dropped')
  return {'dropped', 'the run has no live coordinator'}
end
local deliveries = tonumber(a[3] or '0') + 1
if deliveries > tonumber(ARGV[3]) then
  local err = 'dead-lettered: delivered ' .. (deliveries - 1) ..
    ' times and its worker stopped every time before finishing it'
  local hold = tonumber(c[3] or '0') or 0
  if hold > 0 then
    redis.call('HSET', KEYS[1], 'state', 'held', 'error', err, 'held_until', now + hold)
    redis.call('XADD', KEYS[3], '*', 'k', 'held', 'tid', ARGV[4], 'ep', a[4] or '0', 'e', err,
      'u', tostring(now + hold))
    return {'dead', err}
  end
  redis.call('HSET', KEYS[1], 'state', 'dead', 'error', err, 'ended_ms', now)
  redis.call('XADD', KEYS[3], '*', 'k', 'dead', 'tid', ARGV[4], 'ep', a[4] or '0', 'e', err)
  return {'dead', err}
end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[1], 'entry', ARGV[5],
  'lease_until', now + tonumber(ARGV[2]), 'deliveries', deliveries, 'started_ms', now,
  'started_us', t[1] .. string.format('%06d', tonumber(t[2])))
return running(tostring(epoch), tostring(deliveries), a[5] or '', now)
