-- wrk script for the saturation runs: every request is a POST from a distinct
-- user, and the run ends by printing one JSON line with the figures.
--
--   wrk -t<threads> -c<connections> -d<seconds>s -s bench/load/saturate.lua <url> -- <userPrefix> [<tokensFile> <threads>]
--
-- Thread t sends users <userPrefix><t>-1, <userPrefix><t>-2, ... Latencies are
-- in microseconds; `non2xx` is wrk's count of answers with a status above 399.
-- With a tokens file (one bearer token a line, each for a distinct user), every
-- request instead carries the next token and an empty body `{}`: thread t takes
-- lines t+1, t+1+threads, ...; `reused` counts requests sent after a thread ran
-- out of lines and started over (they then repeat users).

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  user_prefix = (args[1] or "u") .. thread_index .. "-"
  sent = 0
  reused = 0
  if args[2] then
    -- Each thread runs in a Lua state of its own: the thread count comes as an argument.
    local thread_count = tonumber(args[3] or "1")
    tokens = {}
    local n = 0
    for line in io.lines(args[2]) do
      if n % thread_count == thread_index then table.insert(tokens, line) end
      n = n + 1
    end
    headers = { ["Content-Type"] = "application/json" }
  end
end

function request()
  sent = sent + 1
  if tokens then
    if sent > #tokens then reused = reused + 1 end
    headers["Authorization"] = "Bearer " .. tokens[(sent - 1) % #tokens + 1]
    return wrk.format(nil, nil, headers, "{}")
  end
  return wrk.format(nil, nil, nil, '{"userId":"' .. user_prefix .. sent .. '"}')
end

function done(summary, latency, requests)
  local e = summary.errors
  local reused_total = 0
  for _, thread in ipairs(threads) do reused_total = reused_total + (thread:get("reused") or 0) end
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"non2xx":%d,"reused":%d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status, reused_total))
end
