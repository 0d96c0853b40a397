-- Extend the lease of slots a holder has.
-- KEYS[1] the pool's holders, KEYS[2] the slots held (integer)
-- ARGV[1] member ("<slots>|<holder>"), ARGV[2] lease (ms)
-- Returns 1 when extended, 0 when the lease had run out (the slots went back to the pool).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not until_ms then
  return 0
end
if until_ms <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DECRBY', KEYS[2], tonumber(string.match(ARGV[1], '^(%d+)|')) or 1)
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 86400000)
redis.call('PEXPIRE', KEYS[2], 86400000)
return 1
