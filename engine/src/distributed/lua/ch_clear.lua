-- Remove every channel key. KEYS[1] the key index; ARGV[1] the prefix of channel keys.
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('DEL', ARGV[1] .. name)
end
redis.call('DEL', KEYS[1])
return 'ok'
