--[[
  Admits one issue request into a coupon's queue, or says why not.

  KEYS[1] meta      HASH  stock, startsAt, endsAt, closed, clock, paused
  KEYS[2] issued    SET   user ids already issued
  KEYS[3] queue     ZSET  user id -> arrival score (microseconds)
  KEYS[4] requests  HASH  arrival score -> "<userId>|<nonce>"
  KEYS[5] inflight  HASH  user id -> arrival score, for requests being decided

  ARGV[1] user id
  ARGV[2] nonce for a new request id
  ARGV[3] deadline (ms since the epoch) after which the caller has given up
          waiting and answered 503; '' for none

  Returns
    {0, arrival}          accepted
    {1, arrival, nonce}   the user already waits: same request
    {2}                   ALREADY_ISSUED
    {3}                   SOLD_OUT: every remaining coupon is claimed by requests ahead
    {4}                   EVENT_NOT_OPEN: before startsAt, at or after endsAt, or closed
    {5}                   the coupon is not loaded into Redis
    {6}                   too late: the caller's deadline has passed, nothing written
    {7}                   EVENT_PAUSED: an operator paused the event

  The order of the refusals: a closed or out-of-window event refuses everyone;
  then what is final for this user (already issued, already waiting: the same
  request back) and for everyone (sold out) is said even while the event is
  paused, since a pause changes none of it; only a request that could be
  admitted is refused for the pause.
]]
-- Arrival time comes from Redis so that every API process agrees on the order.
local time = redis.call('TIME')
local nowUs = tonumber(time[1]) * 1000000 + tonumber(time[2])
local nowMs = math.floor(nowUs / 1000)

-- A Redis that stalled runs the script late, after the client was already
-- told 503: writing now would queue a request nobody knows of.
local deadline = tonumber(ARGV[3])
if deadline and nowMs > deadline then return {6} end

local meta = redis.call('HMGET', KEYS[1], 'stock', 'startsAt', 'endsAt', 'closed', 'clock', 'paused')
if not meta[1] then return {5} end
if meta[4] == '1' then return {4} end
local startsAt = tonumber(meta[2])
if startsAt and nowMs < startsAt then return {4} end
local endsAt = tonumber(meta[3])
if endsAt and nowMs >= endsAt then return {4} end

local user = ARGV[1]
if redis.call('SISMEMBER', KEYS[2], user) == 1 then return {2} end

local waiting = redis.call('ZSCORE', KEYS[3], user) or redis.call('HGET', KEYS[5], user)
if waiting then
  local record = redis.call('HGET', KEYS[4], waiting)
  if record then return {1, waiting, string.sub(record, #user + 2)} end
end

-- Every queued request will take one coupon unless the event closes first,
-- so once the queue is as long as the stock a newcomer can only be refused.
if tonumber(meta[1]) - redis.call('ZCARD', KEYS[3]) <= 0 then return {3} end
if meta[6] == '1' then return {7} end

-- Ties in the same microsecond keep arrival order: scores strictly increase.
local arrival = nowUs
local last = tonumber(meta[5])
if last and arrival <= last then arrival = last + 1 end
arrival = string.format('%.0f', arrival)
redis.call('HSET', KEYS[1], 'clock', arrival)
redis.call('ZADD', KEYS[3], arrival, user)
redis.call('HSET', KEYS[4], arrival, user .. '|' .. ARGV[2])
return {0, arrival}
