-- Before checking a password: is the account locked, and has this (IP, email) used up its
-- failures in the sliding window? One round trip. KEYS[1] (IP, email) failure set, KEYS[2] lock.
-- ARGV[1] window ms, ARGV[2] limit. Returns {lock_ttl_ms, allowed, remaining, reset_ms, retry_ms}.
local lock_ttl = redis.call('PTTL', KEYS[2])
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
local count, reset, retry = window_state(KEYS[1], now, window, limit)
local allowed = 0
if count < limit then allowed = 1 end
return {math.max(lock_ttl, 0), allowed, math.max(limit - count, 0), reset, retry}
