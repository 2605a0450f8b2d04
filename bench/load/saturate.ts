/**
 * Closed-loop saturation load, in its own process: autocannon keeps
 * CONNECTIONS requests in flight for DURATION seconds, every request from a
 * distinct user. Prints one JSON line with the result.
 *
 * Input (argv[2], JSON): { url, path, connections, durationSec, userPrefix }
 */
import autocannon from 'autocannon';

interface Input {
  url: string;
  path: string;
  connections: number;
  durationSec: number;
  userPrefix: string;
}

const input = JSON.parse(process.argv[2] ?? '{}') as Input;
let n = 0;
const result = await autocannon({
  url: input.url,
  connections: input.connections,
  duration: input.durationSec,
  pipelining: 1,
  requests: [
    {
      method: 'POST',
      path: input.path,
      headers: { 'content-type': 'application/json' },
      setupRequest: (request) => ({
        ...request,
        body: JSON.stringify({ userId: `${input.userPrefix}${(n++).toString(36)}` }),
      }),
    },
  ],
});
const statuses: Record<string, number> = {};
for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) {
  statuses[code] = (stat as { count: number }).count;
}
console.log(
  JSON.stringify({
    requests: result.requests.total,
    throughputRps: result.requests.total / input.durationSec,
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statuses,
  }),
);
