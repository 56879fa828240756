-- The head of a user's index log, mirrored in Redis (engine/index/heads.py).
-- KEYS[1] hash {seq, model, dim, writers}; ARGV[1] op, ARGV[2] ttl seconds
local op = ARGV[1]
local ttl = tonumber(ARGV[2])
if op == "begin" then  -- a writer is about to commit: readers go to the database meanwhile
  redis.call('HINCRBY', KEYS[1], 'writers', 1)
  redis.call('EXPIRE', KEYS[1], ttl)
  return 1
end
local function raise(seq, model, dim)  -- keep the highest head seen
  local current = redis.call('HGET', KEYS[1], 'seq')
  if current == false or tonumber(current) < seq then
    redis.call('HSET', KEYS[1], 'seq', seq, 'model', model, 'dim', dim)
  end
end
if op == "end" then  -- ARGV[3] 1 when committed: ARGV[4] seq, ARGV[5] model, ARGV[6] dim
  local writers = tonumber(redis.call('HGET', KEYS[1], 'writers') or '0')
  redis.call('HSET', KEYS[1], 'writers', math.max(0, writers - 1))
  if ARGV[3] == "1" then raise(tonumber(ARGV[4]), ARGV[5], ARGV[6]) end
  redis.call('EXPIRE', KEYS[1], ttl)
  return 1
end
if op == "seed" then  -- a reader's database read: only while no writer is under way
  -- ARGV[3] seq, ARGV[4] model, ARGV[5] dim
  if tonumber(redis.call('HGET', KEYS[1], 'writers') or '0') > 0 then return 0 end
  raise(tonumber(ARGV[3]), ARGV[4], ARGV[5])
  redis.call('HSETNX', KEYS[1], 'writers', 0)
  redis.call('EXPIRE', KEYS[1], ttl)
  return 1
end
return redis.error_reply("unknown op " .. op)
