-- Sliding windows of failures: one sorted set per subject whose members are failure times
-- (milliseconds, Redis' own clock, so every replica agrees). A failure counts for exactly
-- `window` ms after it happened, however the failures are paced.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), t[1] .. '.' .. t[2]
end
-- Drop the failures older than the window; returns {count, ms until the oldest leaves,
-- ms until a new failure would be allowed (0 when count < limit)}.
local function window_state(key, now, window, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local reset, retry = 0, 0
  if count > 0 then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    reset = tonumber(oldest[2]) + window - now
  end
  if count >= limit then
    local nth = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    retry = tonumber(nth[2]) + window - now
  end
  return count, reset, retry
end
local function window_add(key, now, member, window)
  while redis.call('ZSCORE', key, member) do member = member .. '+' end
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
end
