/**
 * Open-model load, in its own process: requests are sent at a constant
 * arrival rate whatever the server does (they do not wait for earlier
 * answers), and each latency is measured from the moment the request was
 * due, so a slow server cannot hide its queueing (no coordinated omission).
 * Every request comes from a distinct user. Prints one JSON line.
 *
 * Input (argv[2], JSON): { url, path, rate, count, connections, userPrefix,
 *   warmupSec?, warmupPath? }
 * With warmupSec, the same schedule first sends warmupSec × rate requests (to
 * warmupPath, default path) on the same connections; they are reported apart
 * (`warmup`), so the measured figures are the server's steady state, not this
 * process's cold start and its connections being opened.
 */
import http from 'node:http';

interface Input {
  url: string;
  path: string;
  rate: number;
  count: number;
  connections: number;
  userPrefix: string;
  warmupSec?: number;
  warmupPath?: string;
}

const input = JSON.parse(process.argv[2] ?? '{}') as Input;
const target = new URL(input.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: input.connections });
const warmupCount = Math.round((input.warmupSec ?? 0) * input.rate);
const total = warmupCount + input.count;
const latencies = new Float64Array(total);
const statuses: Record<string, number> = {};
let sent = 0;
let completed = 0;
let errors = 0;
const startedAt = performance.now() + 20;
const epochOffset = Date.now() - performance.now();
let lastDue = 0;

function fire(i: number, due: number): void {
  const body = JSON.stringify({ userId: `${input.userPrefix}${i.toString(36)}` });
  const request = http.request(
    {
      agent,
      host: target.hostname,
      port: target.port,
      method: 'POST',
      path: i < warmupCount ? (input.warmupPath ?? input.path) : input.path,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    },
    (res) => {
      res.resume();
      res.on('end', () => {
        latencies[i] = performance.now() - due;
        if (i >= warmupCount) {
          statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1;
        }
        done();
      });
    },
  );
  request.on('error', () => {
    latencies[i] = performance.now() - due;
    if (i >= warmupCount) errors += 1;
    done();
  });
  request.end(body);
}

let finish: () => void = () => undefined;
const finished = new Promise<void>((resolve) => (finish = resolve));
function done(): void {
  completed += 1;
  if (completed === total) finish();
}

function pump(): void {
  const now = performance.now();
  const due = Math.min(total, Math.floor(((now - startedAt) * input.rate) / 1000) + 1);
  while (sent < due) {
    const at = startedAt + (sent * 1000) / input.rate;
    lastDue = at;
    fire(sent, at);
    sent += 1;
  }
  if (sent < total) setTimeout(pump, 1);
}

setTimeout(pump, 20);
await finished;
const measuredFrom = startedAt + (warmupCount * 1000) / input.rate;
const elapsedSec = (performance.now() - measuredFrom) / 1000;
const measured = latencies.subarray(warmupCount);
function percentiles(values: Float64Array) {
  const sorted = Array.from(values).sort((a, b) => a - b);
  const pct = (p: number) =>
    Math.round(
      (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0) * 100,
    ) / 100;
  return { p50: pct(50), p95: pct(95), p99: pct(99), max: pct(100) };
}
// p99 per second of due time: shows whether a tail is spread out or sits in one stretch.
const perSecondP99: number[] = [];
for (let from = 0; from < measured.length; from += input.rate) {
  const window = percentiles(measured.subarray(from, Math.min(measured.length, from + input.rate)));
  perSecondP99.push(window.p99);
}
console.log(
  JSON.stringify({
    sent: sent - warmupCount,
    completed: completed - warmupCount,
    errors,
    statuses,
    offeredRps: input.rate,
    achievedRps: Math.round((completed - warmupCount) / elapsedSec),
    lastDueEpochMs: Math.round(epochOffset + lastDue),
    finishedEpochMs: Date.now(),
    latencyMs: percentiles(measured),
    perSecondP99,
    ...(warmupCount > 0
      ? { warmup: { requests: warmupCount, ...percentiles(latencies.subarray(0, warmupCount)) } }
      : {}),
  }),
);
agent.destroy();
