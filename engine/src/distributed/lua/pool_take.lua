-- Take slots of a pool, leased, and (once taken) reserve the next token of the pool's bucket.
-- KEYS[1] the pool's holders (sorted set: member "<slots>|<holder>", score = lease end, ms of
--         Redis time), KEYS[2] the pool's bucket (string: when the next token is due, µs)
-- ARGV[1] holder id, ARGV[2] slots wanted, ARGV[3] pool size, ARGV[4] lease (ms),
-- ARGV[5] the bucket's interval (µs; 0: no steady rate, only holds), ARGV[6] its burst
-- Returns {1, slots in use, wait in µs before the token may be used} when taken,
-- {0, slots in use, 0} when too few slots are free. Leases that ran out (a dead holder's) are
-- dropped first. Taking slots the holder already has renews them.
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local lease = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local want = tonumber(ARGV[2])
local member = ARGV[2] .. '|' .. ARGV[1]
local used = 0
local mine = redis.call('ZSCORE', KEYS[1], member)
if not mine then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    used = used + (tonumber(string.match(m, '^(%d+)|')) or 1)
  end
  if used + want > tonumber(ARGV[3]) then
    return {0, used, 0}
  end
  used = used + want
end
redis.call('ZADD', KEYS[1], now + lease, member)
redis.call('PEXPIRE', KEYS[1], lease * 2)
local interval = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[2]) or now_us)
if interval == 0 and tat <= now_us then
  return {1, used, 0}
end
local slack = interval * (tonumber(ARGV[6]) - 1)
local start = math.max(now_us, tat - slack)
local next_due = math.max(tat, start) + interval
redis.call('SET', KEYS[2], string.format('%.0f', next_due), 'PX',
  math.floor((next_due - now_us) / 1000) + 60000)
return {1, used, start - now_us}
