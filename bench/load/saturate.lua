-- wrk script for the saturation runs: every request is a POST from a distinct
-- user, and the run ends by printing one JSON line with the figures.
--
--   wrk -t<threads> -c<connections> -d<seconds>s -s bench/load/saturate.lua <url> -- <userPrefix>
--
-- Thread t sends users <userPrefix><t>-1, <userPrefix><t>-2, ... Latencies are
-- in microseconds; `non2xx` is wrk's count of answers with a status above 399.

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
end

function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, '{"userId":"' .. user_prefix .. sent .. '"}')
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"non2xx":%d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end
