-- Everything an API request asks Redis, in one round trip (gateway/security.py), after gcra.lua
-- and quota_take.lua: the global per-IP GCRA rule, the revocation of the caller's session, for
-- routes that show the user (GET /api/auth/me) or meter AI by its plan the cached public user
-- document (cache/users.py), and for the metered AI routes (gateway/metering.py) their per-user
-- rate rule and one unit of today's AI quota.
-- KEYS[1] global limit key; KEYS[2] revoked:<session> (when a token verified);
-- KEYS[3] user generation, KEYS[4] cached user document (when the route needs the user);
-- KEYS[5] the user's AI rate key, KEYS[6] today's AI counter, KEYS[7] the counters' pending set
-- (metered AI routes).
-- ARGV[1..4] as ratelimit.lua (interval ms, limit, cost, commit); metered AI routes add ARGV[5] the
-- AI rule's interval ms, ARGV[6] its limit, ARGV[7] the counter's member in the pending set,
-- ARGV[8] the daily AI limit of a plan not named below, ARGV[9..] pairs of plan id, daily AI limit.
-- Returns {allowed, remaining, reset_after_ms, retry_after_ms, revoked (0/1)[, generation[, document
-- or nil[, AI allowed, remaining, reset_after_ms, retry_after_ms, quota unit]]]}: the document only
-- when it was written under the current generation. The AI part only when the global rule allowed,
-- the session stands and the document is current (its plan sets the limit): the unit is 1 spent,
-- 0 none left today (or the AI rule refused), -1 the counter is unknown here (seed it first).
local r = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
r[5] = 0
if #KEYS >= 2 and redis.call('EXISTS', KEYS[2]) == 1 then r[5] = 1 end
if #KEYS >= 4 then
  local generation = redis.call('GET', KEYS[3]) or '0'
  r[6] = generation
  r[7] = false
  local doc = redis.call('GET', KEYS[4])
  if doc then
    local sep = string.find(doc, '|', 1, true)
    if sep and string.sub(doc, 1, sep - 1) == generation then r[7] = string.sub(doc, sep + 1) end
  end
end
if #KEYS >= 7 and r[1] == 1 and r[5] == 0 and r[7] then
  local ok, user = pcall(cjson.decode, r[7])
  local plan = 'free'  -- as the fallback path reads it (gateway/metering.py spend_ai)
  if ok and type(user) == 'table' and user['plan'] ~= nil then plan = user['plan'] end
  local limit = tonumber(ARGV[8])
  for i = 9, #ARGV - 1, 2 do
    if ARGV[i] == plan then limit = tonumber(ARGV[i + 1]) end
  end
  local ai = gcra(KEYS[5], tonumber(ARGV[5]), tonumber(ARGV[6]), 1, 1)
  local unit = 0
  if ai[1] == 1 then unit = quota_take(KEYS[6], KEYS[7], limit, ARGV[7]) end
  for i = 1, 4 do r[7 + i] = ai[i] end
  r[12] = unit
end
return r
