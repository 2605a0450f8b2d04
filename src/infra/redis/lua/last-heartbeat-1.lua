--[[
  The freshest worker heartbeat, aged by Redis's clock (the clock that stamped it).

  KEYS[1] heartbeats  ZSET  worker id ("<host>:<pid>") -> last beat (ms since the epoch)

  Returns
    {worker id, age in ms}  the most recent beat
    {}                      no worker beat within the time beats are kept
]]
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last == 0 then
  return {}
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return {last[1], now - tonumber(last[2])}
