-- Daily metering of AI requests (cache/quota.py), after quota_take.lua. One hash per user, day and kind:
--   used       units spent today (authoritative while the hash exists)
--   seq        bumped on every change; the database keeps the value of the highest seq it was given
-- KEYS[1] the counter hash, KEYS[2] the set of counters not yet persisted to the database
-- ARGV[1] op: "take" | "give" | "seed" | "persisted"
local op = ARGV[1]
if op == "seed" then
  -- ARGV[2] used, ARGV[3] seq (the database's), ARGV[4] ttl seconds. Only a missing counter is seeded.
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  redis.call('HSET', KEYS[1], 'used', ARGV[2], 'seq', ARGV[3])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
  return 1
end
if op == "persisted" then
  -- ARGV[2] member, ARGV[3] seq the database now holds: clean unless it changed meanwhile
  local seq = redis.call('HGET', KEYS[1], 'seq')
  if seq == false or tonumber(seq) <= tonumber(ARGV[3]) then
    redis.call('SREM', KEYS[2], ARGV[2])
    return 1
  end
  return 0
end
if op == "take" then  -- ARGV[2] limit, ARGV[3] member of the pending set
  return quota_take(KEYS[1], KEYS[2], tonumber(ARGV[2]), ARGV[3])
end
-- give: ARGV[3] member of the pending set
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end  -- unknown here: seed from the database first
local used = tonumber(redis.call('HGET', KEYS[1], 'used') or '0')
if used <= 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'used', -1)
redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('SADD', KEYS[2], ARGV[3])
return 1
