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
 * process's cold start. Every connection is open before the clock starts.
 */
import net from 'node:net';

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
const warmupCount = Math.round((input.warmupSec ?? 0) * input.rate);
const total = warmupCount + input.count;
const latencies = new Float64Array(total);
const statuses: Record<string, number> = {};
let due = 0; // requests whose time has come
let sent = 0; // requests written to a connection (in index order)
let completed = 0;
let errors = 0;
/** Answers that came on a connection with no request in flight. */
let unsolicited = 0;
let lastDue = 0;
const dueAt = (i: number) => startedAt + (i * 1000) / input.rate;

/*
 * The client is a bare HTTP/1.1 one over net sockets, one request in flight per
 * connection: the load shares the machine's two cores with the server under
 * test, and Node's http client spent about 100 µs of CPU per request here,
 * a third of a core at 2,800/s taken from the server. Every answer of the
 * servers measured here carries a Content-Length.
 */
interface Connection {
  socket: net.Socket;
  buffer: Buffer | undefined;
  /** Index of the request in flight, or -1. */
  inFlight: number;
}
const idle: Connection[] = [];

function requestBytes(i: number): string {
  const body = `{"userId":"${input.userPrefix}${i.toString(36)}"}`;
  const path = i < warmupCount ? (input.warmupPath ?? input.path) : input.path;
  return (
    `POST ${path} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

function record(i: number, status: number | undefined): void {
  latencies[i] = performance.now() - dueAt(i);
  if (i >= warmupCount) {
    if (status === undefined) errors += 1;
    else statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
  }
  completed += 1;
  if (completed === total) finish();
}

function dispatch(): void {
  while (sent < due && idle.length > 0) {
    const conn = idle.pop() as Connection;
    conn.inFlight = sent;
    conn.socket.write(requestBytes(sent));
    sent += 1;
  }
}

/** Consumes whole responses from the connection's buffer. */
function onData(conn: Connection, chunk: Buffer): void {
  conn.buffer = conn.buffer ? Buffer.concat([conn.buffer, chunk]) : chunk;
  for (;;) {
    const buffer: Buffer = conn.buffer;
    const headEnd: number = buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = buffer.toString('latin1', 0, headEnd);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!length) {
      throw new Error(`unexpected response on a bench connection: ${JSON.stringify(head)}`);
    }
    if (conn.inFlight < 0) {
      // An answer to no request: an overloaded server's 408 after the request's own answer.
      // The server closes the connection; a new one takes its place (see open()).
      unsolicited += 1;
      conn.buffer = undefined;
      conn.socket.destroy();
      return;
    }
    const end: number = headEnd + 4 + Number(length[1]);
    if (buffer.length < end) return;
    conn.buffer = end < buffer.length ? buffer.subarray(end) : undefined;
    const i = conn.inFlight;
    conn.inFlight = -1;
    idle.push(conn);
    record(i, Number(head.slice(9, 12)));
    if (!conn.buffer) break;
  }
  dispatch();
}

function open(): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.hostname, port: Number(target.port) });
    socket.setNoDelay(true);
    const conn: Connection = { socket, buffer: undefined, inFlight: -1 };
    socket.once('connect', () => {
      idle.push(conn);
      resolve();
    });
    socket.on('data', (chunk: Buffer) => onData(conn, chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      // The request it carried failed; a new connection takes this one's place.
      const index = idle.indexOf(conn);
      if (index >= 0) idle.splice(index, 1);
      if (conn.inFlight >= 0) record(conn.inFlight, undefined);
      conn.inFlight = -1;
      if (completed < total) {
        setTimeout(() => void open().then(dispatch, () => undefined), 10);
      }
    });
  });
}

let finish: () => void = () => undefined;
const finished = new Promise<void>((resolve) => (finish = resolve));
await Promise.all(Array.from({ length: input.connections }, open));
const startedAt = performance.now() + 20;
const epochOffset = Date.now() - performance.now();
// A server that stops answering must not hang the benchmark: what is left by then failed.
const deadline = setTimeout(
  () => {
    while (completed < total) record(completed, undefined);
  },
  (total * 1000) / input.rate + 60_000,
);

function pump(): void {
  due = Math.min(total, Math.floor(((performance.now() - startedAt) * input.rate) / 1000) + 1);
  if (due > 0) lastDue = dueAt(due - 1);
  dispatch();
  if (due < total) setTimeout(pump, 1);
}

setTimeout(pump, 20);
await finished;
clearTimeout(deadline);
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
    unsolicited,
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
for (const conn of idle) conn.socket.destroy();
process.exit(0);
