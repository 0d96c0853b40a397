-- Every live channel key with its content; names of expired keys leave the index.
-- KEYS[1] the key index; ARGV[1] the prefix of channel keys; ARGV[2] '1' to include values
-- Returns one entry per key: {name} or {name, 's', json} or {name, 'l', json…}.
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. name
  local kind = redis.call('TYPE', key).ok
  if kind == 'none' then
    redis.call('SREM', KEYS[1], name)
  elseif ARGV[2] ~= '1' then
    table.insert(out, {name})
  elseif kind == 'string' then
    table.insert(out, {name, 's', redis.call('GET', key)})
  elseif kind == 'list' then
    local items = redis.call('LRANGE', key, 0, -1)
    table.insert(items, 1, 'l')
    table.insert(items, 1, name)
    table.insert(out, items)
  end
end
return out
