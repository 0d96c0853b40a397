-- Add to the number under a channel key (0 when missing), with the memory channel's rules:
-- an integer stays an integer while the amount is integral and the sum below 9e15; otherwise
-- the sum is a float (NaN and infinities become null). The value's text is never re-encoded
-- by a JSON library, so integers stay exact.
-- KEYS[1] the key, KEYS[2] the key index
-- ARGV[1] the amount (decimal text), ARGV[2] '1' when the amount is integral, ARGV[3] the
-- key's name
-- Returns the new value's JSON text, or the error 'NAN <what the key holds>'.
local kind = redis.call('TYPE', KEYS[1]).ok
local current = '0'
if kind == 'string' then
  current = redis.call('GET', KEYS[1])
elseif kind == 'list' then
  return redis.error_reply('NAN a list')
end
local first = string.sub(current, 1, 1)
if first == '"' then
  return redis.error_reply('NAN a string')
elseif first == '[' then
  return redis.error_reply('NAN a list')
elseif first == '{' then
  return redis.error_reply('NAN a map')
elseif first == 't' or first == 'f' then
  return redis.error_reply('NAN a boolean')
elseif first == 'n' or first == '' then
  return redis.error_reply('NAN null')
end
local is_int = string.match(current, '^-?%d+$') ~= nil
local sum = tonumber(current) + tonumber(ARGV[1])
local out
if sum ~= sum or sum == math.huge or sum == -math.huge then
  out = 'null'
elseif is_int and ARGV[2] == '1' and math.abs(sum) < 9.0e15 then
  out = string.format('%d', sum)
else
  out = string.format('%.17g', sum)
  if not string.find(out, '[%.eEn]') then
    out = out .. '.0'
  end
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('SET', KEYS[1], out)
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
redis.call('SADD', KEYS[2], ARGV[3])
return out
