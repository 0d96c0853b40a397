-- Append to or prepend onto the list under a channel key (created when missing).
-- KEYS[1] the key, KEYS[2] the key index
-- ARGV[1] 'r' (append) or 'l' (prepend), ARGV[2] the element (JSON), ARGV[3] time to live in
-- ms ('' keeps the key's), ARGV[4] the key's name
-- Returns the new length, or the error 'NOTALIST' when the key holds something else.
local kind = redis.call('TYPE', KEYS[1]).ok
local ttl = -1
if kind == 'string' then
  if redis.call('GET', KEYS[1]) ~= '[]' then
    return redis.error_reply('NOTALIST')
  end
  ttl = redis.call('PTTL', KEYS[1])
  redis.call('DEL', KEYS[1])
elseif kind ~= 'list' and kind ~= 'none' then
  return redis.error_reply('NOTALIST')
end
local n
if ARGV[1] == 'r' then
  n = redis.call('RPUSH', KEYS[1], ARGV[2])
else
  n = redis.call('LPUSH', KEYS[1], ARGV[2])
end
if ARGV[3] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
elseif ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
redis.call('SADD', KEYS[2], ARGV[4])
return n
