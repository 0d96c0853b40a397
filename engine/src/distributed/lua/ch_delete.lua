-- Remove a channel key. KEYS[1] the key, KEYS[2] the key index, ARGV[1] the key's name.
-- Returns 1 when it held a value.
redis.call('SREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
