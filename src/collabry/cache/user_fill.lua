-- Cache a public user document read from the database, unless the user changed meanwhile.
-- KEYS[1] generation, KEYS[2] document; ARGV[1] the generation seen before the database read,
-- ARGV[2] the document (JSON), ARGV[3] ttl ms. Returns 1 when written.
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. ARGV[2], 'PX', tonumber(ARGV[3]))
return 1
