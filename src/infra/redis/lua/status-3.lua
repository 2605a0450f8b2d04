--[[
  Reads a request that is not final yet.

  KEYS[1] requests  HASH  arrival score -> "<userId>|<nonce>"
  KEYS[2] queue     ZSET  user id -> arrival score
  KEYS[3] meta      HASH  since: when this gate was loaded (microseconds)

  ARGV[1] arrival score
  ARGV[2] nonce

  Returns
    {1, user id, queue position}  waiting; position -1 means taken from the queue and being decided
    {0, since}                    not waiting here (final, lost with an earlier Redis, or never existed);
                                  since is '' when the gate is not loaded
]]
local record = redis.call('HGET', KEYS[1], ARGV[1])
local bar = record and string.find(record, '|', 1, true)
if not bar or string.sub(record, bar + 1) ~= ARGV[2] then
  return {0, redis.call('HGET', KEYS[3], 'since') or ''}
end
local user = string.sub(record, 1, bar - 1)
local rank = redis.call('ZRANK', KEYS[2], user)
return {1, user, rank or -1}
