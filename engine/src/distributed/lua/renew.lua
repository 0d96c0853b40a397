-- A coordinator renews its lease on its run.
-- KEYS[1] coordinator lease; ARGV[1] coordinator id, ARGV[2] epoch, ARGV[3] lease (ms),
-- ARGV[4] the dead-letter hold (ms, as the lease script recorded it)
-- Returns {'ok', expired ('1' when the lease had run out before this renewal, or Redis had
-- lost it), state} or {'fenced', holder} when another coordinator took the run.
local c = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'until', 'state')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not c[1] then
  -- Redis lost the record (a restart with `appendfsync everysec`): take it back as it was.
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'epoch', ARGV[2], 'state', 'running',
    'until', now + tonumber(ARGV[3]), 'hold_ms', ARGV[4] or '0')
  return {'ok', '1', 'running'}
end
if c[1] ~= ARGV[1] or c[2] ~= ARGV[2] then
  return {'fenced', c[1] or ''}
end
local expired = '0'
if tonumber(c[3] or '0') < now then
  expired = '1'
end
redis.call('HSET', KEYS[1], 'until', now + tonumber(ARGV[3]))
return {'ok', expired, c[4] or ''}
