-- Answer or cancel a pending feedback request, atomically: the first one wins. Waiters are
-- woken by an entry on the request's wake stream (they block on it with XREAD).
-- KEYS[1] the request's record, KEYS[2] its wake stream
-- ARGV[1] 'answered' or 'cancelled', ARGV[2] the answer (JSON; empty on cancel),
-- ARGV[3] retention (seconds)
-- Returns {'ok'}, {'missing'} or {'not_pending', status}.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'missing'}
end
if status ~= 'pending' then
  return {'not_pending', status}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
if ARGV[1] == 'answered' then
  redis.call('HSET', KEYS[1], 'resp', ARGV[2])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '10', '*', 's', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
return {'ok'}
