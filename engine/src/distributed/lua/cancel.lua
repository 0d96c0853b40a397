-- The coordinator no longer wants an attempt (its run was cancelled or paused, or it stopped
-- waiting): a queued one is skipped, a running one stops at its next heartbeat, a held dead
-- letter can no longer be requeued.
-- KEYS[1] attempt record
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' or state == 'held' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled')
  return 'cancelled'
end
return state or 'gone'
