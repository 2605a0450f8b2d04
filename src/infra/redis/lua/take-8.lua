--[[
  Takes up to N requests from the head of a coupon's queue and decides each
  one, atomically; records the decided batch under a lease so that a crash
  before its outcomes reach PostgreSQL loses nothing.

  KEYS[1] meta      HASH  stock, closed, epoch, paused
  KEYS[2] issued    SET   user ids already issued
  KEYS[3] queue     ZSET  user id -> arrival score
  KEYS[4] requests  HASH  arrival score -> "<userId>|<nonce>"
  KEYS[5] inflight  HASH  user id -> arrival score
  KEYS[6] batches   HASH  batch id -> JSON {d = decidedAt ms, e = epoch,
                                               i = {user, arrival, outcome, ...},
                                               n = {nonce, ...}}
  KEYS[7] leases    ZSET  batch id -> lease expiry (ms)
  KEYS[8] sync      STRING present while a sync of the coupon holds its lock

  ARGV[1] batch size N
  ARGV[2] lease in ms
  ARGV[3] batch id

  Outcome codes: 1 ISSUED, 2 SOLD_OUT, 3 ALREADY_ISSUED, 4 EVENT_CLOSED.
  Returns nil when the queue is empty, the coupon is not loaded, a sync
  holds it (it is rebuilding the gate from PostgreSQL) or an operator paused
  it (the queue keeps every request in its place until the resume; a closed
  event is drained even while paused, since its requests only wait for their
  EVENT_CLOSED), else the batch's
  record as stored in KEYS[6]: one string rather than four replies per
  request, which the worker would decode one by one.
]]
local meta = redis.call('HMGET', KEYS[1], 'stock', 'closed', 'epoch', 'paused')
if not meta[1] or redis.call('EXISTS', KEYS[8]) == 1 then return nil end
if meta[4] == '1' and meta[2] ~= '1' then return nil end
local popped = redis.call('ZPOPMIN', KEYS[3], tonumber(ARGV[1]))
if #popped == 0 then return nil end

local stock = tonumber(meta[1])
local closed = meta[2] == '1'
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- Writes go out a few thousand arguments per call rather than one call per
-- request (Lua's unpack is limited to about 8,000 values).
local function inChunks(command, key, args)
  for from = 1, #args, 4000 do
    redis.call(command, key, unpack(args, from, math.min(#args, from + 3999)))
  end
end

local arrivals = {}
for i = 2, #popped, 2 do arrivals[#arrivals + 1] = popped[i] end
local entries = {}
for from = 1, #arrivals, 4000 do
  local got = redis.call('HMGET', KEYS[4], unpack(arrivals, from, math.min(#arrivals, from + 3999)))
  for j = 1, #got do entries[#entries + 1] = got[j] end
end

local record = {}
local nonces = {}
local epoch = meta[3] or ''
local newlyIssued = {}
local inflight = {}
for i = 1, #popped, 2 do
  local user, arrival = popped[i], popped[i + 1]
  local outcome
  if closed then
    outcome = 4
  elseif redis.call('SISMEMBER', KEYS[2], user) == 1 then
    outcome = 3
  elseif stock <= 0 then
    outcome = 2
  else
    -- A user is in the queue once, so no later request of this batch can be theirs.
    stock = stock - 1
    newlyIssued[#newlyIssued + 1] = user
    outcome = 1
  end
  inflight[#inflight + 1] = user
  inflight[#inflight + 1] = arrival
  local entry = entries[(i + 1) / 2] or ''
  record[#record + 1] = user
  record[#record + 1] = arrival
  record[#record + 1] = outcome
  nonces[#nonces + 1] = string.sub(entry, #user + 2)
end
inChunks('SADD', KEYS[2], newlyIssued)
inChunks('HSET', KEYS[5], inflight)

redis.call('HSET', KEYS[1], 'stock', stock)
-- The nonces ride along (n) so that the reply can be the record itself. The other
-- scripts read only d, e and i, as they did before n was written.
local encoded = cjson.encode({d = nowMs, e = epoch, i = record, n = nonces})
redis.call('HSET', KEYS[6], ARGV[3], encoded)
redis.call('ZADD', KEYS[7], nowMs + tonumber(ARGV[2]), ARGV[3])
return encoded
