-- A run ended: its results, added tasks, outbox and channel stay for the retention time.
-- KEYS the run's results, dynamic-task set, outbox and channel index
-- ARGV[1] the prefix of channel keys, ARGV[2] retention (ms)
for i = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local key = ARGV[1] .. name
  if redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, ARGV[2])
  end
end
return 'ok'
