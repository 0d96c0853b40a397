-- Store a channel value. KEYS[1] the key, KEYS[2] the key index
-- ARGV[1] 's' (ARGV[4] is the JSON value) or 'l' (ARGV[4…] are the list's elements, at least
-- one), ARGV[2] time to live in ms ('' for none: an earlier expiry is cleared), ARGV[3] the
-- key's name
redis.call('DEL', KEYS[1])
if ARGV[1] == 's' then
  redis.call('SET', KEYS[1], ARGV[4])
else
  for i = 4, #ARGV, 1000 do
    redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
if ARGV[2] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
redis.call('SADD', KEYS[2], ARGV[3])
return 'ok'
