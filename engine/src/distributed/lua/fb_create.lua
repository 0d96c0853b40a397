-- Store a feedback request unless one with its id exists (then return that one).
-- KEYS[1] the request's record
-- ARGV[1] the request (JSON), ARGV[2] retention (seconds)
-- Returns {'new'} or {'exists', request JSON, status}.
local existing = redis.call('HMGET', KEYS[1], 'req', 'status')
if existing[1] then
  return {'exists', existing[1], existing[2] or 'pending'}
end
redis.call('HSET', KEYS[1], 'req', ARGV[1], 'status', 'pending')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {'new'}
