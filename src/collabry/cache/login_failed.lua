-- Record one failed login against the (IP, email) pair and the account; lock the account when
-- its failures reach the limit. KEYS[1] (IP, email) key, KEYS[2] account key, KEYS[3] lock key.
-- ARGV: ip interval ms, ip limit, account interval ms, account limit, lock ms.
-- Returns {locked (0/1), ip remaining}.
local ip = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 1, 1)
local acct = gcra(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), 1, 1)
if acct[1] == 0 or acct[2] == 0 then
  redis.call('SET', KEYS[3], '1', 'PX', tonumber(ARGV[5]))
  redis.call('DEL', KEYS[2])
  return {1, ip[2]}
end
return {0, ip[2]}
