-- Reserve the next token of a bucket (GCRA on Redis time: no clock of a caller is trusted).
-- KEYS[1] the bucket (string: when the next token is due, µs)
-- ARGV[1] interval (µs; 0: no steady rate, only holds), ARGV[2] burst
-- Returns the wait in µs before the reserved token may be used (0: now).
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or now_us)
if interval == 0 and tat <= now_us then
  return 0
end
local slack = interval * (tonumber(ARGV[2]) - 1)
local start = math.max(now_us, tat - slack)
local next_due = math.max(tat, start) + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_due), 'PX',
  math.floor((next_due - now_us) / 1000) + 60000)
return start - now_us
