--[[
  Reads a request that is not final yet.

  KEYS[1] requests  HASH  arrival score -> "<userId>|<nonce>"
  KEYS[2] queue     ZSET  user id -> arrival score

  ARGV[1] arrival score
  ARGV[2] nonce

  Returns nil when no such request waits (final, or never existed), else
    {user id, queue position}; position -1 means taken from the queue and being decided.
]]
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return nil end
local bar = string.find(record, '|', 1, true)
if string.sub(record, bar + 1) ~= ARGV[2] then return nil end
local user = string.sub(record, 1, bar - 1)
local rank = redis.call('ZRANK', KEYS[2], user)
if rank then return {user, rank} end
return {user, -1}
