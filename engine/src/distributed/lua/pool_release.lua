-- Give slots back.
-- KEYS[1] the pool's holders, KEYS[2] the slots held (integer)
-- ARGV[1] member ("<slots>|<holder>")
-- Returns 1 when given back, 0 when they were not held any more (their lease had run out).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('DECRBY', KEYS[2], tonumber(string.match(ARGV[1], '^(%d+)|')) or 1)
  return 1
end
return 0
