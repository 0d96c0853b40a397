-- Take slots of a pool, leased, and (once taken) reserve the next token of the pool's bucket.
-- KEYS[1] the pool's holders (sorted set: member "<slots>|<holder>", score = lease end, ms of
--         Redis time), KEYS[2] the pool's bucket (string: when the next token is due, µs),
-- KEYS[3] the slots held (integer: the sum over the holders, kept by the pool scripts)
-- ARGV[1] holder id, ARGV[2] slots wanted, ARGV[3] pool size, ARGV[4] lease (ms),
-- ARGV[5] the bucket's interval (µs; 0: no steady rate, only holds), ARGV[6] its burst
-- Returns {1, slots in use, wait in µs before the token may be used} when taken,
-- {0, slots in use, 0} when too few slots are free. Leases that ran out (a dead holder's) are
-- dropped first. Taking slots the holder already has renews them. The pool's keys live a day
-- past their last use.
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local keep = 86400000
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  local freed = 0
  for _, m in ipairs(expired) do
    freed = freed + (tonumber(string.match(m, '^(%d+)|')) or 1)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('DECRBY', KEYS[3], freed)
end
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if used < 0 then
  used = 0
  redis.call('SET', KEYS[3], 0)
end
local want = tonumber(ARGV[2])
local member = ARGV[2] .. '|' .. ARGV[1]
if not redis.call('ZSCORE', KEYS[1], member) then
  if used + want > tonumber(ARGV[3]) then
    return {0, used, 0}
  end
  used = redis.call('INCRBY', KEYS[3], want)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), member)
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[3], keep)
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
