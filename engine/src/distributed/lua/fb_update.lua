-- Rewrite a feedback request's bookkeeping (timeout time, checkpoint), only if it exists: an
-- answer or a cancel that landed meanwhile stays.
-- KEYS[1] the request's record; ARGV field, value, field, value, …
-- Returns 1, or 0 when there is no such request.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
