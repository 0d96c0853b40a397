-- Read one channel key. KEYS[1] the key.
-- Returns {'s', json} for a value, {'l', json…} for a list (one element each), {'n'} when absent.
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'string' then
  return {'s', redis.call('GET', KEYS[1])}
end
if kind == 'list' then
  local items = redis.call('LRANGE', KEYS[1], 0, -1)
  table.insert(items, 1, 'l')
  return items
end
return {'n'}
