-- Everything an API request asks Redis, in one round trip (gateway/security.py):
-- the global per-IP GCRA rule, the revocation of the caller's session, and for routes that show
-- the user (GET /api/auth/me) the cached public user document (cache/users.py).
-- KEYS[1] global limit key; KEYS[2] revoked:<session> (when a token verified);
-- KEYS[3] user generation, KEYS[4] cached user document (when the route shows the user).
-- ARGV[1..4] as ratelimit.lua (interval ms, limit, cost, commit).
-- Returns {allowed, remaining, reset_after_ms, retry_after_ms, revoked (0/1)[, generation[, document]]}:
-- the document only when it was written under the current generation.
local r = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
r[5] = 0
if #KEYS >= 2 and redis.call('EXISTS', KEYS[2]) == 1 then r[5] = 1 end
if #KEYS >= 4 then
  local generation = redis.call('GET', KEYS[3]) or '0'
  r[6] = generation
  local doc = redis.call('GET', KEYS[4])
  if doc then
    local sep = string.find(doc, '|', 1, true)
    if sep and string.sub(doc, 1, sep - 1) == generation then r[7] = string.sub(doc, sep + 1) end
  end
end
return r
