-- Extend the lease of an attempt the caller holds.
-- KEYS[1] attempt record, KEYS[2] coordinator lease
-- ARGV[1] worker id, ARGV[2] epoch, ARGV[3] lease (ms)
-- Returns 'ok', 'cancelled' (stop the body: the run or the attempt was cancelled) or 'lost'
-- (the lease went to someone else: stop, do not commit).
local a = redis.call('HMGET', KEYS[1], 'state', 'owner', 'epoch')
if a[2] ~= ARGV[1] or a[3] ~= ARGV[2] then
  return 'lost'
end
if a[1] == 'cancelled' then
  return 'cancelled'
end
if a[1] ~= 'running' then
  return 'lost'
end
if redis.call('HGET', KEYS[2], 'state') == 'cancelled' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled')
  return 'cancelled'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'lease_until', now + tonumber(ARGV[3]))
return 'ok'
