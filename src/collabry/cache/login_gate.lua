-- Before checking a password: is the account locked, and has this (IP, email) used up its
-- failures? One round trip. KEYS[1] (IP, email) failure key, KEYS[2] lock key.
-- ARGV[1] interval ms, ARGV[2] limit. Returns {lock_ttl_ms, allowed, remaining, reset_ms, retry_ms}.
local lock_ttl = redis.call('PTTL', KEYS[2])
local d = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 1, 0)
return {math.max(lock_ttl, 0), d[1], d[2], d[3], d[4]}
