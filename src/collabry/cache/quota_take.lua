-- One unit of a daily counter (cache/quota.py): a hash {used, seq} per user, day and kind, and the
-- set of counters not yet persisted to the database. Shared by quota.lua and request.lua.
-- Returns 1 spent, 0 the limit is reached, -1 the counter is unknown here (seed it from the
-- database first).
local function quota_take(key, pending, limit, member)
  if redis.call('EXISTS', key) == 0 then return -1 end
  local used = tonumber(redis.call('HGET', key, 'used') or '0')
  if used >= limit then return 0 end
  redis.call('HINCRBY', key, 'used', 1)
  redis.call('HINCRBY', key, 'seq', 1)
  redis.call('SADD', pending, member)
  return 1
end
