-- GCRA (generic cell rate algorithm): one key per subject holding its theoretical arrival
-- time in milliseconds. The clock is Redis' own, so every replica agrees on it.
-- KEYS[1] limiter key
-- ARGV[1] emission interval ms (period / limit), ARGV[2] limit (burst), ARGV[3] cost,
-- ARGV[4] 1 = record the hit, 0 = only ask whether it would pass
-- returns {allowed, remaining, reset_after_ms, retry_after_ms}
local function gcra(key, interval, limit, cost, commit)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local tolerance = interval * limit
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - tolerance
  if now < allow_at then
    return {0, math.max(0, math.floor((tolerance - (tat - now)) / interval)), tat - now, allow_at - now}
  end
  if commit == 1 and cost > 0 then
    redis.call('SET', key, new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
  end
  return {1, math.floor((tolerance - (new_tat - now)) / interval), new_tat - now, 0}
end
