--[[
  Records that a worker process is alive, stamped with Redis's clock so that
  beats from several machines compare.

  KEYS[1] heartbeats  ZSET  worker id ("<host>:<pid>") -> last beat (ms since the epoch)

  ARGV[1] worker id
  ARGV[2] how long a beat is kept (ms): older members (workers long gone) are dropped

  Returns the time of the beat (ms since the epoch)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local keep = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - keep))
redis.call('PEXPIRE', KEYS[1], keep)
return now
