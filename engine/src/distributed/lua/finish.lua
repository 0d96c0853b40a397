-- A coordinator ends its run: workers drop what is still queued for it.
-- KEYS[1] coordinator lease; ARGV[1] coordinator id, ARGV[2] epoch, ARGV[3] final state
-- ('ended' or 'cancelled'), ARGV[4] how long the record stays (ms)
local c = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if c[1] ~= ARGV[1] or c[2] ~= ARGV[2] then
  return 'fenced'
end
redis.call('HSET', KEYS[1], 'state', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 'ok'
