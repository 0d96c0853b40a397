-- A coordinator takes charge of a run.
-- KEYS[1] coordinator lease; ARGV[1] coordinator id, ARGV[2] lease (ms), ARGV[3] how long (ms)
-- a dead-lettered attempt is held for an operator to requeue it ('0': not held)
-- Returns {'ok', epoch} or {'busy', holder, ms left} while another live coordinator holds it.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local c = redis.call('HMGET', KEYS[1], 'owner', 'until', 'state')
if c[1] and c[1] ~= '' and c[1] ~= ARGV[1] and c[3] == 'running' and tonumber(c[2] or '0') > now then
  return {'busy', c[1], tostring(tonumber(c[2]) - now)}
end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', now + tonumber(ARGV[2]), 'state', 'running',
  'hold_ms', ARGV[3] or '0')
redis.call('PERSIST', KEYS[1])
return {'ok', tostring(epoch)}
