--[[
  Changes a loaded coupon's total quantity and moves its stock by the same
  amount, refusing a shrink the stock cannot give up.

  KEYS[1] meta      HASH  total, stock
  KEYS[2] sync      STRING present while a sync of the coupon holds its lock

  ARGV[1] the new total quantity

  Returns
    {1, stock}     applied; the stock after the change
    {0, minimum}   refused: the smallest total the gate allows, what is
                   issued plus what batches in flight decided ISSUED
    {2}            the coupon is not loaded: PostgreSQL alone holds the total
    {3}            a sync holds the coupon: it is about to write PostgreSQL's
                   total, which may predate this change

  The stock is the total minus every coupon issued or decided ISSUED in a
  batch not yet settled, so it is exactly what can be given up. Queued
  requests hold no coupon yet: a shrink may leave fewer coupons than requests
  waiting, and those at the back are then decided SOLD_OUT.
]]
local meta = redis.call('HMGET', KEYS[1], 'total', 'stock')
if not meta[2] then return {2} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {3} end
local total = tonumber(meta[1])
local stock = tonumber(meta[2])
local wanted = tonumber(ARGV[1])
local after = stock + (wanted - total)
if after < 0 then return {0, total - stock} end
redis.call('HSET', KEYS[1], 'total', wanted, 'stock', after)
return {1, after}
