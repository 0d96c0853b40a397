-- The reaper found an entry nobody acknowledged for longer than a lease.
-- KEYS[1] attempt record
-- Returns 'ack' (finished or gone: drop the entry), 'alive' (its holder still renews the
-- lease: leave it) or 'requeue' (the holder is gone: the old epoch is fenced off and the
-- caller adds a fresh entry to the queue).
local a = redis.call('HMGET', KEYS[1], 'state', 'lease_until')
if a[1] == 'queued' then
  return 'requeue'
end
if a[1] ~= 'running' then
  return 'ack'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(a[2] or '0') > now then
  return 'alive'
end
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'state', 'queued', 'owner', '')
return 'requeue'
