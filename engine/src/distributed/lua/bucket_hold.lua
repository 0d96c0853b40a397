-- Hand out no token of a bucket for a while (an API answered Retry-After).
-- KEYS[1] the bucket; ARGV[1] delay (µs), ARGV[2] interval (µs), ARGV[3] burst
-- Returns 1.
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slack = tonumber(ARGV[2]) * (tonumber(ARGV[3]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now_us)
local held = now_us + tonumber(ARGV[1]) + slack
if held > tat then
  redis.call('SET', KEYS[1], string.format('%.0f', held), 'PX',
    math.floor((held - now_us) / 1000) + 60000)
end
return 1
