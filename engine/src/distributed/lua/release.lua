-- A worker shutting down hands back an attempt it holds, so another takes it at once; the
-- delivery does not count toward the cap.
-- KEYS[1] attempt record; ARGV[1] worker id, ARGV[2] epoch
-- Returns 'requeue' (the caller adds a fresh entry) or 'stale'.
local a = redis.call('HMGET', KEYS[1], 'state', 'owner', 'epoch', 'deliveries')
if a[1] ~= 'running' or a[2] ~= ARGV[1] or a[3] ~= ARGV[2] then
  return 'stale'
end
local deliveries = tonumber(a[4] or '1') - 1
if deliveries < 0 then
  deliveries = 0
end
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'state', 'queued', 'owner', '', 'deliveries', deliveries)
return 'requeue'
