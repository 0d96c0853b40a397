-- Extend the lease of slots a holder has.
-- KEYS[1] the pool's holders; ARGV[1] member ("<slots>|<holder>"), ARGV[2] lease (ms)
-- Returns 1 when extended, 0 when the lease had run out (the slots went back to the pool).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not until_ms or until_ms <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 1
