--[[
  Admits one issue request into a coupon's queue, or says why not.

  KEYS[1] meta      HASH  stock, startsAt, endsAt, closed, clock, paused
  KEYS[2] issued    SET   user ids already issued
  KEYS[3] queue     ZSET  user id -> arrival score (microseconds)
  KEYS[4] requests  HASH  arrival score -> "<userId>|<nonce>"
  KEYS[5] inflight  HASH  user id -> arrival score, for requests being decided
  KEYS[6] quota 1   STRING a rate limit's counter for this request (the client address)
  KEYS[7] quota 2   STRING a second one (the user)

  ARGV[1] user id
  ARGV[2] nonce for a new request id
  ARGV[3] deadline (ms since the epoch) after which the caller has given up
          waiting and answered 503; '' for none
  ARGV[4] quota 1's points: requests it admits per window; '0' when there is
          no such quota (KEYS[6] is then any key and is not touched)
  ARGV[5] quota 1's window in seconds
  ARGV[6] quota 2's points, as ARGV[4]
  ARGV[7] quota 2's window in seconds

  The quotas are the API's rate limits, counted here so that a guarded
  request costs one round trip, not three. Each counts as
  rate-limiter-flexible's own Redis script does (a fixed window: SET NX with
  the window's expiry, INCR, PTTL), on the keys it uses, so the library's
  checks on other routes and this script share one count.

  Every reply starts {code, consumed 1, reset ms 1, consumed 2, reset ms 2}
  (zeros for an absent quota; nothing counted for codes 5 and 6); after
  those five come the code's own values:
    0  arrival            accepted
    1  arrival, nonce     the user already waits: same request
    2                     ALREADY_ISSUED
    3                     SOLD_OUT: every remaining coupon is claimed by requests ahead
    4                     EVENT_NOT_OPEN: before startsAt, at or after endsAt, or closed
    5                     the coupon is not loaded into Redis (nothing counted)
    6                     too late: the caller's deadline has passed, nothing written
    7                     EVENT_PAUSED: an operator paused the event
    8  quota (1 or 2)     over that quota: counted, nothing else done

  The order of the refusals: a request over a quota is refused before
  anything about the event is said; a closed or out-of-window event refuses everyone;
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
if deadline and nowMs > deadline then return {6, 0, 0, 0, 0} end

local meta = redis.call('HMGET', KEYS[1], 'stock', 'startsAt', 'endsAt', 'closed', 'clock', 'paused')
-- Not loaded: the caller loads the gate and asks again, so nothing is counted yet.
if not meta[1] then return {5, 0, 0, 0, 0} end

local c1, r1, c2, r2 = 0, 0, 0, 0
local over = 0
local function count(key, points, window)
  redis.call('SET', key, 0, 'EX', window, 'NX')
  local consumed = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl == -1 then
    redis.call('EXPIRE', key, window)
    ttl = 1000 * window
  end
  return consumed, ttl
end
local points1 = tonumber(ARGV[4]) or 0
if points1 > 0 then
  c1, r1 = count(KEYS[6], points1, tonumber(ARGV[5]))
  if c1 > points1 then over = 1 end
end
local points2 = tonumber(ARGV[6]) or 0
if points2 > 0 then
  c2, r2 = count(KEYS[7], points2, tonumber(ARGV[7]))
  if c2 > points2 and over == 0 then over = 2 end
end
if over > 0 then return {8, c1, r1, c2, r2, over} end

if meta[4] == '1' then return {4, c1, r1, c2, r2} end
local startsAt = tonumber(meta[2])
if startsAt and nowMs < startsAt then return {4, c1, r1, c2, r2} end
local endsAt = tonumber(meta[3])
if endsAt and nowMs >= endsAt then return {4, c1, r1, c2, r2} end

local user = ARGV[1]
if redis.call('SISMEMBER', KEYS[2], user) == 1 then return {2, c1, r1, c2, r2} end

local waiting = redis.call('ZSCORE', KEYS[3], user) or redis.call('HGET', KEYS[5], user)
if waiting then
  local record = redis.call('HGET', KEYS[4], waiting)
  if record then return {1, c1, r1, c2, r2, waiting, string.sub(record, #user + 2)} end
end

-- Every queued request will take one coupon unless the event closes first,
-- so once the queue is as long as the stock a newcomer can only be refused.
if tonumber(meta[1]) - redis.call('ZCARD', KEYS[3]) <= 0 then return {3, c1, r1, c2, r2} end
if meta[6] == '1' then return {7, c1, r1, c2, r2} end

-- Ties in the same microsecond keep arrival order: scores strictly increase.
local arrival = nowUs
local last = tonumber(meta[5])
if last and arrival <= last then arrival = last + 1 end
arrival = string.format('%.0f', arrival)
redis.call('HSET', KEYS[1], 'clock', arrival)
redis.call('ZADD', KEYS[3], arrival, user)
redis.call('HSET', KEYS[4], arrival, user .. '|' .. ARGV[2])
return {0, c1, r1, c2, r2, arrival}
