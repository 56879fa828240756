-- Record one failed login against the (IP, email) pair and the account, each in its sliding
-- window; lock the account when its failures in the window reach the limit.
-- KEYS[1] (IP, email) set, KEYS[2] account set, KEYS[3] lock key.
-- ARGV: ip window ms, ip limit, account window ms, account limit, lock ms.
-- Returns {locked (0/1), ip remaining}.
local ip_window, ip_limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local acct_window, acct_limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local now, member = now_ms()
window_add(KEYS[1], now, member, ip_window)
window_add(KEYS[2], now, member, acct_window)
local ip_count = window_state(KEYS[1], now, ip_window, ip_limit)
local acct_count = window_state(KEYS[2], now, acct_window, acct_limit)
if acct_count >= acct_limit then
  redis.call('SET', KEYS[3], '1', 'PX', tonumber(ARGV[5]))
  redis.call('DEL', KEYS[2])
  return {1, math.max(ip_limit - ip_count, 0)}
end
return {0, math.max(ip_limit - ip_count, 0)}
