--[[
  Claims batches whose lease has expired (their worker died, stalled or lost
  Redis), extending each lease for the claimer so two recoverers rarely do
  the same work (and when they do, settling is idempotent).

  KEYS[1] leases    ZSET  batch id -> lease expiry (ms)
  KEYS[2] batches   HASH  batch id -> JSON {d = decidedAt, e = epoch,
                                            i = {user, arrival, outcome, ...},
                                            n = {nonce, ...}}
  KEYS[3] requests  HASH  arrival score -> "<userId>|<nonce>"

  ARGV[1] new lease in ms
  ARGV[2] at most this many batches

  Returns a list of batches, each {batch id, record}: the record as the take
  script stored it (and returned it). A record stored before records carried
  their nonces gets them from KEYS[3].
]]
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', nowMs, 'LIMIT', 0, tonumber(ARGV[2]))
local reply = {}
for _, id in ipairs(expired) do
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then
    redis.call('ZADD', KEYS[1], nowMs + tonumber(ARGV[1]), id)
    local batch = cjson.decode(raw)
    if batch.n == nil then
      local nonces = {}
      local items = batch.i
      for i = 1, #items, 3 do
        local user, arrival = items[i], items[i + 1]
        local entry = redis.call('HGET', KEYS[3], arrival) or ''
        nonces[#nonces + 1] = string.sub(entry, #user + 2)
      end
      batch.n = nonces
      raw = cjson.encode(batch)
    end
    reply[#reply + 1] = {id, raw}
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return reply
