-- The head of a user's index log, mirrored in Redis (engine/index/heads.py): one string
-- "<seq>|<writers>|<dim>|<model>" (seq -1: no head known), so a reader needs one GET.
-- KEYS[1] the key; ARGV[1] op, ARGV[2] ttl seconds
local op = ARGV[1]
local ttl = tonumber(ARGV[2])
local seq, writers, dim, model = -1, 0, '0', ''
local raw = redis.call('GET', KEYS[1])
if raw then
  local s, w, d, m = string.match(raw, '^(%-?%d+)|(%d+)|(%d+)|(.*)$')
  if s then seq, writers, dim, model = tonumber(s), tonumber(w), d, m end
end
local function raise(new_seq, new_model, new_dim)  -- keep the highest head seen
  if new_seq > seq then seq, model, dim = new_seq, new_model, new_dim end
end
if op == "begin" then  -- a writer is about to commit: readers go to the database meanwhile
  writers = writers + 1
elseif op == "end" then  -- ARGV[3] 1 when committed: ARGV[4] seq, ARGV[5] model, ARGV[6] dim
  writers = math.max(0, writers - 1)
  if ARGV[3] == "1" then raise(tonumber(ARGV[4]), ARGV[5], ARGV[6]) end
elseif op == "seed" then  -- a reader's database read: only while no writer is under way
  -- ARGV[3] seq, ARGV[4] model, ARGV[5] dim
  if writers > 0 then return 0 end
  raise(tonumber(ARGV[3]), ARGV[4], ARGV[5])
else
  return redis.error_reply("unknown op " .. op)
end
redis.call('SET', KEYS[1], seq .. '|' .. writers .. '|' .. dim .. '|' .. model, 'EX', ttl)
return 1
