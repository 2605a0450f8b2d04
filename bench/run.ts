/**
 * `npm run bench [-- --quick]`: measures, in one run on this machine, side by side:
 *
 *  1. this service's accept endpoint (multi-process mode): throughput at
 *     saturation (wrk) and latency at a fixed arrival rate (open model);
 *  2. a reference ceiling: a bare Express server doing one EVALSHA per request;
 *  3. a naive baseline: the same endpoint with SELECT … FOR UPDATE in PostgreSQL;
 *  4. the drain rate from a pre-filled queue, next to a bare Lua-pop + multi-row-insert ceiling;
 *  5. the end-to-end scenario of the 2,800 requests/s system (100,000 coupons,
 *     113,000 requests at 2,800/s), checked for exactly the stock issued;
 *  6. Redis bytes per pending request and the peak RSS of every process;
 *  7. the accept endpoint with what guards it (bearer tokens and rate limits) against the same endpoint
 *     without, each request from a distinct user with its own token;
 *  8. the accept endpoint keeping its Prometheus metrics against the same endpoint without.
 *
 * Prints a table with ratios, writes bench/results/<timestamp>.json, and
 * bench/results/latest.{json,svg} for docs/performance.md. Exits 1 only when a
 * correctness check fails (never because a speed target was missed).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { renderChart } from './lib/svg-chart.js';
import {
  cpuSeconds,
  localRedisPid,
  peakRss,
  processTree,
  runLoad,
  startProcess,
  type Running,
} from './lib/procs.js';
import { measureDrainCeiling, type CeilingStyle } from './lib/drain-ceiling.js';
import { prefillQueue } from './lib/prefill.js';
import { describeFailure } from './lib/setup-error.js';
import {
  createCoupon as createCouponOn,
  drained,
  serviceEnv as serviceEnvOf,
  startService as startServiceProcess,
} from './lib/service.js';
import {
  checkStores,
  databaseUrlOf,
  deleteKeys,
  resetDatabase as resetDatabaseOn,
} from './lib/stores.js';
import { writeTokens } from './lib/tokens.js';
import { saturate, wrkVersion, type SaturationResult } from './load/saturate.js';

const quick = process.argv.includes('--quick');
const ROOT = join(import.meta.dirname, '..');
const RESULTS = join(ROOT, 'bench', 'results');
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_ADMIN_URL =
  process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ADMIN_TOKEN = 'bench-admin-token-0123456789';
const JWT_SECRET = 'bench-jwt-secret-0123456789abcdef0123456789';
const RUN = Date.now().toString(36);
const PREFIX = `bench:${RUN}:`;

/** Everything that affects the figures, printed and saved with them. */
const settings = {
  mode: quick ? 'quick' : 'full',
  apiProcesses: availableParallelism(),
  batchSize: 2000,
  batchIntervalMs: 100,
  batchLanes: 2,
  workerNice: 10,
  /** Saturation runs of the API alone and of the ceiling, alternating; medians are compared. */
  pairedTrials: 3,
  saturation: {
    tool: 'wrk',
    connections: 100,
    threads: 1,
    durationSec: quick ? 3 : 10,
    warmupSec: quick ? 1 : 3,
  },
  fixedRate: { rps: 5000, durationSec: quick ? 2 : 10, warmupSec: quick ? 1 : 2, connections: 200 },
  drain: { requests: quick ? 20_000 : 200_000 },
  scenario: {
    coupons: quick ? 10_000 : 100_000,
    requests: quick ? 11_300 : 113_000,
    rps: 2800,
    connections: 200,
    /** Seconds of the same load first sent to another coupon, on the same connections. */
    warmupSec: 3,
  },
  memory: { pending: quick ? 100_000 : 1_000_000 },
  /**
   * The accept endpoint (API processes alone) as the service's settings guard it, measured
   * in turn against `off`. Each entry is the service's environment: the rate limits join
   * `on` (or a third entry) by adding their settings here.
   */
  guards: {
    off: { name: 'accept, auth off', env: {} as Record<string, string> },
    on: {
      name: 'accept, auth and limits on',
      env: {
        JWT_SECRET,
        // The default per-user and failed-authentication limits, checked on every request.
        // Every bench request comes from one address, so the per-address limit is raised
        // out of reach: it is counted (the Redis work is the same) but never refuses.
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_IP_POINTS: '1000000',
      } as Record<string, string>,
    },
    /** Tokens minted per saturation run: more than the run can send at this rate. */
    tokensPerSecond: 30_000,
  },
  /** The accept endpoint (API processes alone, no guards) with its metrics kept and without. */
  metrics: {
    off: {
      name: 'accept, metrics off',
      env: { METRICS_ENABLED: 'false' } as Record<string, string>,
    },
    on: { name: 'accept, metrics on', env: {} as Record<string, string> },
  },
};

const targets = {
  acceptRps: 10_000,
  acceptP99At5000Ms: 30,
  ceilingRatio: 0.8,
  naiveRatio: 8,
  drainRps: 50_000,
  drainCeilingRatio: 0.5,
  scenarioP95Ms: 10,
  scenarioSettleMs: 1_000,
  redisBytesPerPending: 300,
  apiRssMb: 200,
  guardedRatio: 0.8,
  metricsRatio: 0.95,
};

const databaseUrl = (name: string) => databaseUrlOf(PG_ADMIN_URL, name);
const resetDatabase = (name: string) => resetDatabaseOn(PG_ADMIN_URL, name);

function serviceEnv(extra: Record<string, string>): Record<string, string> {
  return serviceEnvOf(
    {
      databaseUrl: databaseUrl('coupons_bench'),
      redisUrl: REDIS_URL,
      prefix: PREFIX,
      adminToken: ADMIN_TOKEN,
    },
    settings,
    { API_PROCESSES: String(settings.apiProcesses), ...extra },
  );
}

function startService(port: number, extra: Record<string, string> = {}): Promise<Running> {
  return startServiceProcess(serviceEnv({ PORT: String(port), ...extra }));
}

function createCoupon(port: number, totalQuantity: number): Promise<number> {
  return createCouponOn(port, ADMIN_TOKEN, `bench ${RUN}`, totalQuantity);
}

interface OpenLoopResult {
  sent: number;
  completed: number;
  errors: number;
  /** Answers on a connection with no request in flight (an overloaded server's late 408). */
  unsolicited?: number;
  statuses: Record<string, number>;
  achievedRps: number;
  lastDueEpochMs: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** p99 of each second of the measured run. */
  perSecondP99: number[];
  /** The requests sent first to warm connections and code, not counted above. */
  warmup?: { requests: number; p50: number; p95: number; p99: number; max: number };
}

interface AcceptFigures {
  name: string;
  saturation: SaturationResult;
  /** Throughput of every saturation run, when there were several (the median is `saturation`). */
  saturationRuns?: number[];
  fixedRate: OpenLoopResult;
  processes: { pid: number; what: string; peakRssMb: number }[];
}

const nothingLeft = async (): Promise<void> => undefined;

/** Says so when a saturation run had failed answers (they do not count in its throughput). */
function reportFailures(name: string, r: SaturationResult): SaturationResult {
  if (r.non2xx + r.errors > 0) {
    process.stdout.write(
      `  ${name}: ${num(r.non2xx)} answers with a status above 399 and ${num(r.errors)} socket errors or timeouts in this saturation run (not counted in its throughput)\n`,
    );
  }
  return r;
}

/** Warm-up, saturation and fixed-rate runs against one server listening on `port`. */
async function measureAccept(
  name: string,
  server: Running,
  port: number,
  couponId: number,
  idle: () => Promise<void> = nothingLeft,
): Promise<AcceptFigures> {
  const url = `http://127.0.0.1:${port}`;
  const path = `/coupons/${couponId}/issue-requests`;
  const { connections, threads, durationSec, warmupSec } = settings.saturation;
  process.stdout.write(
    `  ${name}: warm-up, saturation ${durationSec}s, fixed rate ${settings.fixedRate.rps}/s ${settings.fixedRate.durationSec}s\n`,
  );
  await saturate({
    url,
    path,
    connections,
    threads,
    durationSec: warmupSec,
    userPrefix: `w${RUN}`,
  });
  const saturation = reportFailures(
    name,
    await saturate({ url, path, connections, threads, durationSec, userPrefix: `s${RUN}` }),
  );
  // The fixed-rate run starts from an idle service: a worker still draining the saturation
  // run's backlog would measure that catch-up, not the service at 5,000/s.
  await idle();
  // Its first seconds warm the load generator's connections and code (reported apart).
  const fixedRate = await runLoad<OpenLoopResult>('bench/load/open-loop.ts', {
    url,
    path,
    rate: settings.fixedRate.rps,
    count: settings.fixedRate.rps * settings.fixedRate.durationSec,
    warmupSec: settings.fixedRate.warmupSec,
    connections: settings.fixedRate.connections,
    userPrefix: `f${RUN}`,
  });
  if (fixedRate.errors + (fixedRate.unsolicited ?? 0) > 0) {
    process.stdout.write(
      `  ${name}: ${num(fixedRate.errors)} requests failed and ${num(fixedRate.unsolicited ?? 0)} answers came with no request in flight in the fixed-rate run\n`,
    );
  }
  return {
    name,
    saturation,
    fixedRate,
    processes: peakRss(processTree(server.child.pid as number)),
  };
}

function startContender(
  name: string,
  script: string,
  port: number,
  env: Record<string, string>,
): Promise<Running> {
  return startProcess(
    name,
    process.execPath,
    ['--import', 'tsx', script],
    { PORT: String(port), PROCESSES: String(settings.apiProcesses), ...env },
    (line) => line.includes('"ready":true'),
  );
}

/** The bare EVALSHA ceiling (bench/contenders/ceiling.ts), in this run's key space. */
function startCeiling(port: number): Promise<Running> {
  return startContender('EVALSHA ceiling', 'bench/contenders/ceiling.ts', port, {
    REDIS_URL,
    REDIS_KEY_PREFIX: PREFIX,
  });
}

/** A server under test, started and ready, with the coupon its requests go to. */
interface Contender {
  readonly name: string;
  readonly server: Running;
  readonly port: number;
  readonly couponId: number;
  /** Resolves once the server has nothing left over from an earlier run (a drained queue). */
  readonly idle: () => Promise<void>;
}

/**
 * Two contenders, both running, measured in turn: each one's own runs
 * (warm-up, saturation, fixed rate), then `settings.pairedTrials - 1` more
 * saturation runs each, alternating, so that both see the same moments of
 * this shared machine. Each one's saturation figure is the median of its runs.
 */
async function benchPair(a: Contender, b: Contender): Promise<[AcceptFigures, AcceptFigures]> {
  const figures = [a, b].map(() => undefined as AcceptFigures | undefined);
  const runs: SaturationResult[][] = [[], []];
  for (const [i, c] of [a, b].entries()) {
    const f = await measureAccept(c.name, c.server, c.port, c.couponId, c.idle);
    figures[i] = f;
    runs[i]?.push(f.saturation);
  }
  const { connections, threads, durationSec } = settings.saturation;
  process.stdout.write(
    `  ${a.name} and ${b.name} in turn: ${settings.pairedTrials - 1} more saturation runs each\n`,
  );
  for (let trial = 1; trial < settings.pairedTrials; trial += 1) {
    for (const [i, c] of [a, b].entries()) {
      await c.idle();
      runs[i]?.push(
        reportFailures(
          c.name,
          await saturate({
            url: `http://127.0.0.1:${c.port}`,
            path: `/coupons/${c.couponId}/issue-requests`,
            connections,
            threads,
            durationSec,
            userPrefix: `t${trial}${RUN}`,
          }),
        ),
      );
    }
  }
  const [fa, fb] = figures.map((f, i) => {
    const own = runs[i] as SaturationResult[];
    return { ...(f as AcceptFigures), saturation: median(own), saturationRuns: own.map(rps) };
  });
  return [fa as AcceptFigures, fb as AcceptFigures];
}

const rps = (r: SaturationResult) => Math.round(r.throughputRps);

/** The middle item by `value` (the lower of the two middle ones for an even count). */
function middle<T>(items: readonly T[], value: (item: T) => number): T | undefined {
  const sorted = [...items].sort((a, b) => value(a) - value(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** The middle value (the lower of the two middle ones for an even count). */
function medianOf(values: readonly number[]): number {
  return middle(values, (v) => v) ?? 0;
}

/** The run with the median throughput. */
function median(runs: readonly SaturationResult[]): SaturationResult {
  return middle(runs, (r) => r.throughputRps) as SaturationResult;
}

/** A log line as JSON, or an empty object for a line that is not. */
function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return {};
  }
}

interface DrainFigures {
  requests: number;
  drainRps: number;
  /** The issue's bare ceiling: one batch at a time, INSERT … VALUES (see drain-ceiling.ts). */
  ceilingRps: number;
  /** The same bare work moved as the worker moves rows: array parameters, overlapped pops. */
  arrayCeilingRps: number;
  batches: number;
  workerPeakRssMb: number;
}

/** Pre-fills a queue, then lets one worker process decide and persist it all. */
async function benchDrain(redis: Redis): Promise<DrainFigures> {
  const port = 3301;
  const n = settings.drain.requests;
  // A database of its own, as the naive baseline has: the accept runs' rows (and autovacuum
  // catching up on them) would otherwise weigh on the drain by however long those runs were.
  await resetDatabase('coupons_bench_drain');
  const drainDb = { DATABASE_URL: databaseUrl('coupons_bench_drain') };
  const db = new pg.Client({ connectionString: drainDb.DATABASE_URL });
  const api = await startService(port, { ROLE: 'api', API_PROCESSES: '1', ...drainDb });
  const couponId = await createCoupon(port, n);
  await api.stop();
  // The bare ceiling first, on the empty database (its table is dropped afterwards), so that
  // neither run leaves the other rows for autovacuum to work through.
  await db.connect();
  const bareCeiling = (style: CeilingStyle) =>
    measureDrainCeiling(redis, db, `${PREFIX}ceiling`, n, settings.batchSize, style);
  process.stdout.write('  drain: bare ceiling (Lua pop + multi-row insert)\n');
  const ceilingRps = await bareCeiling('values');
  process.stdout.write('  drain: bare ceiling with array parameters and overlapped pops\n');
  const arrayCeilingRps = await bareCeiling('arrays');
  process.stdout.write(`  drain: pre-filling ${n.toLocaleString('en')} requests\n`);
  await prefillQueue(redis, PREFIX, couponId, n, `d${RUN}`);
  const worker = await startService(port, { ROLE: 'worker', ...drainDb });
  try {
    // The worker's batch lines say when everything is decided and recorded. Counting rows in
    // PostgreSQL instead would load the database under test: a count over up to 200,000
    // rows ten times a second cost PostgreSQL about 1.1 µs of CPU per drained request
    // (two paired runs), and the drain 2-4% of its rate.
    const batches: { timestamp: string; durationMs?: number }[] = [];
    let seen = 0;
    let decided = 0;
    const deadline = Date.now() + 600_000;
    while (decided < n) {
      for (; seen < worker.lines.length; seen += 1) {
        const line = parseJson(worker.lines[seen] as string) as {
          message?: string;
          timestamp?: string;
          durationMs?: number;
          size?: number;
        };
        if (line.message !== 'batch' || !line.timestamp) continue;
        batches.push({ timestamp: line.timestamp, durationMs: line.durationMs });
        decided += line.size ?? 0;
      }
      if (decided >= n) break;
      if (worker.child.exitCode !== null) throw new Error('the drain worker exited');
      if (Date.now() > deadline) throw new Error('the queue did not drain in 10 minutes');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const recorded = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM issue_requests WHERE request_id LIKE $1',
      [`${couponId}-%`],
    );
    if (Number(recorded.rows[0]?.n) !== n) {
      throw new Error(
        `the worker logged ${decided} decided requests, PostgreSQL holds ${recorded.rows[0]?.n}`,
      );
    }
    const first = batches[0];
    const last = batches[batches.length - 1];
    if (!first || !last) throw new Error('no batch lines from the worker');
    const started = Date.parse(first.timestamp) - (first.durationMs ?? 0);
    const ended = Date.parse(last.timestamp);
    const workerPeakRssMb = peakRss([worker.child.pid as number])[0]?.peakRssMb ?? 0;
    return {
      requests: n,
      drainRps: Math.round((n * 1000) / Math.max(1, ended - started)),
      ceilingRps,
      arrayCeilingRps,
      batches: batches.length,
      workerPeakRssMb,
    };
  } finally {
    await worker.stop();
    await db.end();
    await deleteKeys(redis, `${PREFIX}*`);
  }
}

interface ScenarioFigures {
  coupons: number;
  requests: number;
  accepted: number;
  rejectedAtAccept: number;
  other: number;
  issued: number;
  rejectedByWorker: number;
  latencyMs: OpenLoopResult['latencyMs'];
  achievedRps: number;
  settleMs: number;
  exact: boolean;
  /**
   * The EVALSHA ceiling under the same load (same rate, count, connections and
   * warm-up), run right after: what this machine's stack gives at this rate
   * with no logic, as a yardstick for the service's latency.
   */
  ceiling: { latencyMs: OpenLoopResult['latencyMs']; achievedRps: number };
}

/** 100,000 coupons, 113,000 distinct users at a constant 2,800 requests/s. */
async function benchScenario(
  redis: Redis,
  db: pg.Client,
): Promise<Omit<ScenarioFigures, 'ceiling'>> {
  const port = 3302;
  const { coupons, requests, rps, connections, warmupSec } = settings.scenario;
  const service = await startService(port);
  try {
    // Clients, connections and compiled code are warm in a running service before an event
    // opens: the load generator first sends 3 s of the same load to another coupon, on the
    // connections it then uses for the event. (A cold start shows seconds-long tails in its
    // first 2-3 s: 200 connections handed from the cluster primary to the API processes at
    // once, and code not yet optimised, in the service and in the load generator.)
    const warmup = await createCoupon(port, 10_000_000);
    const couponId = await createCoupon(port, coupons);
    process.stdout.write(
      `  scenario: ${requests.toLocaleString('en')} requests at ${rps}/s for ${coupons.toLocaleString('en')} coupons\n`,
    );
    const load = await runLoad<OpenLoopResult>('bench/load/open-loop.ts', {
      url: `http://127.0.0.1:${port}`,
      path: `/coupons/${couponId}/issue-requests`,
      rate: rps,
      count: requests,
      warmupSec,
      warmupPath: `/coupons/${warmup}/issue-requests`,
      connections,
      userPrefix: `e${RUN}`,
    });
    const accepted = load.statuses['202'] ?? 0;
    let settledAt = Date.now();
    const deadline = Date.now() + 120_000;
    for (;;) {
      const { rows } = await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM issue_requests WHERE request_id LIKE $1',
        [`${couponId}-%`],
      );
      settledAt = Date.now();
      if (Number(rows[0]?.n) >= accepted) break;
      if (Date.now() > deadline) throw new Error('the scenario did not settle in 2 minutes');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { rows } = await db.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM issue_requests WHERE request_id LIKE $1 GROUP BY status',
      [`${couponId}-%`],
    );
    const byStatus = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
    const issuedRows = Number(
      (
        await db.query<{ n: string }>(
          'SELECT count(*) AS n FROM issued_coupons WHERE coupon_id = $1',
          [couponId],
        )
      ).rows[0]?.n,
    );
    const rejectedAtAccept = load.statuses['409'] ?? 0;
    const other = load.completed - accepted - rejectedAtAccept;
    return {
      coupons,
      requests,
      accepted,
      rejectedAtAccept,
      other,
      issued: issuedRows,
      rejectedByWorker: byStatus.REJECTED ?? 0,
      latencyMs: load.latencyMs,
      achievedRps: load.achievedRps,
      settleMs: Math.max(0, settledAt - load.lastDueEpochMs),
      exact:
        issuedRows === coupons &&
        (byStatus.ISSUED ?? 0) === coupons &&
        other === 0 &&
        load.errors === 0,
    };
  } finally {
    await service.stop();
    await deleteKeys(redis, `${PREFIX}*`);
  }
}

/** The scenario's load, warm-up included, against the EVALSHA ceiling. */
async function scenarioCeiling(redis: Redis): Promise<ScenarioFigures['ceiling']> {
  const port = 3103;
  const { requests, rps, connections, warmupSec } = settings.scenario;
  process.stdout.write(`  scenario: the same load against the EVALSHA ceiling\n`);
  const server = await startCeiling(port);
  try {
    const load = await runLoad<OpenLoopResult>('bench/load/open-loop.ts', {
      url: `http://127.0.0.1:${port}`,
      path: '/coupons/1/issue-requests',
      rate: rps,
      count: requests,
      warmupSec,
      connections,
      userPrefix: `c${RUN}`,
    });
    if (load.errors > 0 || (load.statuses['202'] ?? 0) !== requests) {
      throw new Error(`the ceiling failed requests in the scenario: ${JSON.stringify(load)}`);
    }
    return { latencyMs: load.latencyMs, achievedRps: load.achievedRps };
  } finally {
    await server.stop();
    await deleteKeys(redis, `${PREFIX}*`);
  }
}

interface SideBySideFigures {
  off: SideFigures;
  on: SideFigures;
  /** on / off, of the median throughputs: the figure the target is set on. */
  ratio: number;
  /**
   * off / on, of the median CPU per request: what the side costs, less moved than throughput
   * by the machine's other work. Absent when no run could be measured.
   */
  cpuRatio?: number;
}

interface SideFigures {
  name: string;
  saturationRuns: number[];
  saturation: SaturationResult;
  /**
   * CPU time per answered request, in µs, of each counted run: the side's API processes and,
   * when it runs on this machine, Redis (the runs take turns, so Redis serves one at a time).
   */
  cpuUsPerRequestRuns: number[];
}

/** One side of a side-by-side run: the service's environment for it. */
interface Side {
  readonly name: string;
  readonly env: Record<string, string>;
}

/**
 * The accept endpoint with one setting's side on and off (the guards, the
 * metrics), both running, alternating saturation runs so both see the same
 * moments of this shared machine; medians compared. A side with JWT_SECRET
 * sends every request with its own user's token (minted before the run, one
 * file per run, none reused: a token seen twice would be verified once).
 */
async function benchSideBySide(
  { off, on }: { off: Side; on: Side },
  [offPort, onPort]: [number, number],
  redisPid: number | undefined,
): Promise<SideBySideFigures> {
  const { tokensPerSecond } = settings.guards;
  const { connections, threads, durationSec, warmupSec } = settings.saturation;
  const offServer = await startService(offPort, { ROLE: 'api', ...off.env });
  const onServer = await startService(onPort, { ROLE: 'api', ...on.env });
  const folder = join(tmpdir(), `cfs-bench-tokens-${RUN}`);
  mkdirSync(folder, { recursive: true });
  try {
    const coupons = [
      await createCoupon(offPort, 10_000_000),
      await createCoupon(onPort, 10_000_000),
    ];
    const runs: SaturationResult[][] = [[], []];
    const cpuRuns: number[][] = [[], []];
    const measured = [offServer, onServer].map((server) => [
      ...processTree(server.child.pid as number),
      ...(redisPid === undefined ? [] : [redisPid]),
    ]);
    for (let trial = 0; trial <= settings.pairedTrials; trial += 1) {
      const seconds = trial === 0 ? warmupSec : durationSec;
      for (const [i, side] of [off, on].entries()) {
        const label = `${trial === 0 ? 'w' : 't'}${trial}${i}${RUN}`;
        let tokensFile: string | undefined;
        if (side.env.JWT_SECRET) {
          tokensFile = join(folder, `${label}.txt`);
          await writeTokens(tokensFile, side.env.JWT_SECRET, label, tokensPerSecond * seconds);
        }
        const cpuBefore = cpuSeconds(measured[i] ?? []);
        const result = await saturate({
          url: `http://127.0.0.1:${i === 0 ? offPort : onPort}`,
          path: `/coupons/${coupons[i]}/issue-requests`,
          connections,
          threads,
          durationSec: seconds,
          userPrefix: label,
          ...(tokensFile ? { tokensFile } : {}),
        });
        if (tokensFile) rmSync(tokensFile);
        if (result.reused > 0) {
          process.stdout.write(
            `  ${side.name}: ${num(result.reused)} requests repeated a user (the tokens ran out): raise settings.guards.tokensPerSecond\n`,
          );
        }
        const cpuUs = ((cpuSeconds(measured[i] ?? []) - cpuBefore) * 1e6) / result.requests;
        // The warm-up run is not counted.
        if (trial > 0) {
          runs[i]?.push(reportFailures(side.name, result));
          if (result.requests > 0 && cpuUs > 0) cpuRuns[i]?.push(cpuUs);
        }
      }
      if (trial === 0) {
        process.stdout.write(
          `  ${off.name} and ${on.name} in turn: ${settings.pairedTrials} saturation runs each\n`,
        );
      }
    }
    const [offRuns, onRuns] = runs as [SaturationResult[], SaturationResult[]];
    const [offCpu, onCpu] = cpuRuns as [number[], number[]];
    const figures = {
      off: {
        name: off.name,
        saturationRuns: offRuns.map(rps),
        saturation: median(offRuns),
        cpuUsPerRequestRuns: offCpu,
      },
      on: {
        name: on.name,
        saturationRuns: onRuns.map(rps),
        saturation: median(onRuns),
        cpuUsPerRequestRuns: onCpu,
      },
    };
    return {
      ...figures,
      ratio: figures.on.saturation.throughputRps / figures.off.saturation.throughputRps,
      ...(offCpu.length > 0 && onCpu.length > 0
        ? { cpuRatio: medianOf(offCpu) / medianOf(onCpu) }
        : {}),
    };
  } finally {
    rmSync(folder, { recursive: true, force: true });
    await onServer.stop();
    await offServer.stop();
  }
}

/** Redis memory per waiting request, from a deep queue. */
async function benchMemory(redis: Redis): Promise<{ pending: number; bytesPerPending: number }> {
  const port = 3303;
  const n = settings.memory.pending;
  const api = await startService(port, { ROLE: 'api', API_PROCESSES: '1' });
  const couponId = await createCoupon(port, n * 2);
  await api.stop();
  const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
  const before = await used();
  process.stdout.write(`  memory: ${n.toLocaleString('en')} pending requests\n`);
  await prefillQueue(redis, PREFIX, couponId, n, `m${RUN}`);
  const after = await used();
  await deleteKeys(redis, `${PREFIX}*`);
  return { pending: n, bytesPerPending: Math.round((after - before) / n) };
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0] ?? '';
  } catch {
    return 'unknown';
  }
}

/** A side-by-side's CPU per request, as the second line of its figures ('' when unmeasured). */
function cpuLine({ on, off, cpuRatio }: SideBySideFigures): string {
  if (cpuRatio === undefined) return '';
  const runs = (side: SideFigures) => side.cpuUsPerRequestRuns.map(Math.round).join(', ');
  return `\n  (CPU per request, API processes and Redis: ${on.name} ${runs(on)} µs, ${off.name} ${runs(off)} µs; off/on of the medians ${cpuRatio.toFixed(2)})`;
}

const pad = (s: string | number, n: number) => String(s).padEnd(n);
const num = (n: number) => Math.round(n).toLocaleString('en');
const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');

async function main(): Promise<void> {
  await checkStores(REDIS_URL, PG_ADMIN_URL);
  const machine = {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    redis: version('redis-server', ['--version']),
    postgres: version('psql', ['--version']),
    // Checked first: without wrk there is nothing to measure saturation with.
    loadGenerator: wrkVersion(),
  };
  console.log(
    `coupon-issuance benchmark (${settings.mode}) on ${machine.cores} cores, ${machine.cpu}`,
  );
  console.log(`settings: ${JSON.stringify(settings)}`);
  console.log('building…');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  await resetDatabase('coupons_bench');
  const redis = new Redis(REDIS_URL);
  const db = new pg.Client({ connectionString: databaseUrl('coupons_bench') });
  await db.connect();
  // What CREATE DATABASE without options gives here, printed with the figures; the ids of
  // every contender's tables compare byte by byte whatever it is.
  const collation =
    (await db.query<{ lc_collate: string }>('SHOW lc_collate')).rows[0]?.lc_collate ?? 'unknown';
  console.log(`databases created with collation ${collation}`);

  console.log('accept endpoint:');
  // The service as `npm start` runs it (API processes plus the worker draining every accepted
  // request into PostgreSQL on the same cores) against the naive baseline.
  await resetDatabase('coupons_bench_naive');
  const full = await startService(3300, { ROLE: 'all' });
  const naiveServer = await startContender('naive: FOR UPDATE', 'bench/contenders/naive.ts', 3200, {
    DATABASE_URL: databaseUrl('coupons_bench_naive'),
  });
  let ours: AcceptFigures;
  let naive: AcceptFigures;
  try {
    const fullCoupon = await createCoupon(3300, 10_000_000);
    const naiveCoupon = await fetch('http://127.0.0.1:3200/coupons', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ totalQuantity: 10_000_000 }),
    });
    [ours, naive] = await benchPair(
      {
        name: 'service + worker',
        server: full,
        port: 3300,
        couponId: fullCoupon,
        idle: () => drained(redis, PREFIX, fullCoupon, 'the full service'),
      },
      {
        name: 'naive: FOR UPDATE',
        server: naiveServer,
        port: 3200,
        couponId: ((await naiveCoupon.json()) as { id: number }).id,
        idle: nothingLeft,
      },
    );
  } finally {
    await naiveServer.stop();
    await full.stop();
    await deleteKeys(redis, `${PREFIX}*`);
  }
  // The API processes alone against the bare EVALSHA ceiling: like for like.
  const api = await startService(3300, { ROLE: 'api' });
  const ceilingServer = await startCeiling(3100);
  let oursApi: AcceptFigures;
  let ceiling: AcceptFigures;
  try {
    [oursApi, ceiling] = await benchPair(
      {
        name: 'service, API alone',
        server: api,
        port: 3300,
        couponId: await createCoupon(3300, 10_000_000),
        idle: nothingLeft,
      },
      {
        name: 'EVALSHA ceiling',
        server: ceilingServer,
        port: 3100,
        couponId: 1,
        idle: nothingLeft,
      },
    );
  } finally {
    await ceilingServer.stop();
    await api.stop();
    await deleteKeys(redis, `${PREFIX}*`);
  }
  console.log('accept endpoint with its guards:');
  // Redis's CPU counts with the side's own: the guards' limits are counted there.
  const redisPid = localRedisPid(await redis.info('server'));
  const guards = await benchSideBySide(settings.guards, [3304, 3305], redisPid);
  await deleteKeys(redis, `${PREFIX}*`);
  console.log('accept endpoint with its metrics:');
  // The guards' ports again, free once their services stopped (3306 is MySQL's).
  const metrics = await benchSideBySide(settings.metrics, [3304, 3305], redisPid);
  await deleteKeys(redis, `${PREFIX}*`);
  console.log('drain:');
  const drain = await benchDrain(redis);
  console.log('scenario:');
  const scenario: ScenarioFigures = {
    ...(await benchScenario(redis, db)),
    ceiling: await scenarioCeiling(redis),
  };
  console.log('memory:');
  const memory = await benchMemory(redis);
  await db.end();
  redis.disconnect();

  const apiRss = Math.max(
    0,
    ...ours.processes.filter((p) => p.what.includes('(api)')).map((p) => p.peakRssMb),
  );
  const results = {
    at: new Date().toISOString(),
    command: `npm run bench${quick ? ' -- --quick' : ''}`,
    machine: { ...machine, postgresCollation: collation },
    settings,
    accept: { ours, oursApi, ceiling, naive },
    ratios: {
      oursToCeiling: oursApi.saturation.throughputRps / ceiling.saturation.throughputRps,
      oursWithWorkerToCeiling: ours.saturation.throughputRps / ceiling.saturation.throughputRps,
      oursToNaive: ours.saturation.throughputRps / naive.saturation.throughputRps,
      drainToCeiling: drain.drainRps / drain.ceilingRps,
      drainToArrayCeiling: drain.drainRps / drain.arrayCeilingRps,
    },
    guards,
    metrics,
    drain,
    scenario,
    memory: { ...memory, apiPeakRssMb: apiRss },
    targets: {
      acceptRps: { target: targets.acceptRps, value: ours.saturation.throughputRps },
      acceptP99At5000Ms: { target: targets.acceptP99At5000Ms, value: ours.fixedRate.latencyMs.p99 },
      ceilingRatio: {
        target: targets.ceilingRatio,
        value: oursApi.saturation.throughputRps / ceiling.saturation.throughputRps,
      },
      naiveRatio: {
        target: targets.naiveRatio,
        value: ours.saturation.throughputRps / naive.saturation.throughputRps,
      },
      drainRps: { target: targets.drainRps, value: drain.drainRps },
      drainCeilingRatio: {
        target: targets.drainCeilingRatio,
        value: drain.drainRps / drain.ceilingRps,
      },
      scenarioP95Ms: { target: targets.scenarioP95Ms, value: scenario.latencyMs.p95 },
      scenarioSettleMs: { target: targets.scenarioSettleMs, value: scenario.settleMs },
      redisBytesPerPending: { target: targets.redisBytesPerPending, value: memory.bytesPerPending },
      apiRssMb: { target: targets.apiRssMb, value: apiRss },
      guardedRatio: { target: targets.guardedRatio, value: guards.ratio },
      metricsRatio: { target: targets.metricsRatio, value: metrics.ratio },
    },
  };

  console.log('');
  console.log(
    `${pad('accept endpoint', 36)}${pad('saturation rps', 16)}${pad('p50/p99 ms', 14)}${pad(`@${settings.fixedRate.rps}/s p50/p95/p99/max ms`, 30)}achieved`,
  );
  for (const c of [ours, oursApi, ceiling, naive]) {
    const f = c.fixedRate.latencyMs;
    console.log(
      `${pad(c.name, 36)}${pad(num(c.saturation.throughputRps), 16)}${pad(`${c.saturation.latencyMs.p50}/${c.saturation.latencyMs.p99}`, 14)}${pad(`${Math.round(f.p50)}/${Math.round(f.p95)}/${Math.round(f.p99)}/${Math.round(f.max)}`, 30)}${num(c.fixedRate.achievedRps)}/s`,
    );
  }
  console.log(
    `  (@${settings.fixedRate.rps}/s: after the saturation run's queue is drained; the first ${settings.fixedRate.warmupSec} s warm the load generator's connections and are not counted — their p99: ${[ours, oursApi, ceiling, naive].map((c) => `${c.name} ${Math.round(c.fixedRate.warmup?.p99 ?? 0)} ms`).join(', ')})`,
  );
  console.log(
    `  (saturation: median of ${settings.pairedTrials} runs each, the two of a pair alternating: ${[ours, naive, oursApi, ceiling].map((c) => `${c.name} ${c.saturationRuns?.map(num).join(', ')}`).join('; ')} req/s)`,
  );
  const r = results.ratios;
  console.log(
    `ratios: API alone / ceiling ${r.oursToCeiling.toFixed(2)}; API + worker / ceiling ${r.oursWithWorkerToCeiling.toFixed(2)}; API + worker / naive ${r.oursToNaive.toFixed(1)}`,
  );
  console.log(
    `guards: ${guards.on.name} ${num(guards.on.saturation.throughputRps)} req/s, ${guards.off.name} ${num(guards.off.saturation.throughputRps)} req/s (medians of ${guards.on.saturationRuns.map(num).join(', ')} and ${guards.off.saturationRuns.map(num).join(', ')}); ratio ${guards.ratio.toFixed(2)} (target ≥ ${targets.guardedRatio})${cpuLine(guards)}`,
  );
  console.log(
    `metrics: ${metrics.on.name} ${num(metrics.on.saturation.throughputRps)} req/s, ${metrics.off.name} ${num(metrics.off.saturation.throughputRps)} req/s (medians of ${metrics.on.saturationRuns.map(num).join(', ')} and ${metrics.off.saturationRuns.map(num).join(', ')}); ratio ${metrics.ratio.toFixed(2)} (target ≥ ${targets.metricsRatio})${cpuLine(metrics)}`,
  );
  console.log(
    `drain: ${num(drain.drainRps)} decided+persisted/s over ${num(drain.requests)} (${drain.batches} batches); bare ceiling ${num(drain.ceilingRps)}/s; ratio ${r.drainToCeiling.toFixed(2)}`,
  );
  console.log(
    `  (the same bare work moved as the worker moves rows, array parameters and overlapped pops: ${num(drain.arrayCeilingRps)}/s; ratio ${r.drainToArrayCeiling.toFixed(2)})`,
  );
  const s = scenario;
  console.log(
    `scenario: ${num(s.requests)} requests at ${num(s.achievedRps)}/s → ${num(s.accepted)} accepted, ${num(s.rejectedAtAccept)} refused SOLD_OUT at once, ${num(s.issued)} issued, ${s.rejectedByWorker} rejected by the worker, ${s.other} other; accept p50/p95/p99/max ${s.latencyMs.p50}/${s.latencyMs.p95}/${s.latencyMs.p99}/${s.latencyMs.max} ms; all final ${num(s.settleMs)} ms after the last request; exactly the stock issued: ${s.exact ? 'yes' : 'NO'}`,
  );
  const c = s.ceiling.latencyMs;
  console.log(
    `  (the EVALSHA ceiling under the same load: ${num(s.ceiling.achievedRps)}/s, p50/p95/p99/max ${c.p50}/${c.p95}/${c.p99}/${c.max} ms)`,
  );
  console.log(
    `memory: ${memory.bytesPerPending} Redis bytes per pending request (${num(memory.pending)} deep queue)`,
  );
  for (const p of [
    ...ours.processes.map((x) => ({ ...x, of: 'service' })),
    { pid: 0, what: 'drain worker', peakRssMb: drain.workerPeakRssMb, of: 'drain' },
  ]) {
    console.log(`  peak RSS ${pad(p.what, 40)} ${p.peakRssMb} MB`);
  }
  console.log('targets:');
  const below = new Set([
    'acceptP99At5000Ms',
    'scenarioP95Ms',
    'scenarioSettleMs',
    'redisBytesPerPending',
    'apiRssMb',
  ]);
  for (const [name, t] of Object.entries(results.targets)) {
    const ok = below.has(name) ? t.value <= t.target : t.value >= t.target;
    console.log(
      `  ${pad(name, 24)} ${pad(below.has(name) ? `≤ ${t.target}` : `≥ ${t.target}`, 12)} ${pad(Number(t.value.toFixed(2)), 12)} ${mark(ok)}`,
    );
  }

  mkdirSync(RESULTS, { recursive: true });
  const stamp = results.at.replace(/[:.]/g, '-');
  writeFileSync(join(RESULTS, `${stamp}.json`), JSON.stringify(results, null, 2));
  writeFileSync(
    join(RESULTS, `latest${quick ? '-quick' : ''}.json`),
    JSON.stringify(results, null, 2),
  );
  const chart = renderChart({
    title: `Accept endpoint on ${machine.cores} cores (service, load generator, Redis and PostgreSQL on one machine)`,
    subtitle: `${results.command} · ${results.at.slice(0, 10)} · saturation: ${settings.saturation.connections} connections; latency: open model at ${settings.fixedRate.rps}/s`,
    contenders: [ours, oursApi, ceiling, naive].map((c) => ({
      name: c.name,
      throughputRps: c.saturation.throughputRps,
      latencyMs: c.fixedRate.latencyMs,
    })),
  });
  writeFileSync(join(RESULTS, `latest${quick ? '-quick' : ''}.svg`), chart);
  console.log(
    `wrote bench/results/${stamp}.json and bench/results/latest${quick ? '-quick' : ''}.{json,svg}`,
  );
  if (!scenario.exact) {
    console.error('correctness check failed: the scenario did not issue exactly the stock');
    process.exit(1);
  }
}

await main().catch((err: unknown) => {
  console.error(describeFailure(err));
  process.exit(1);
});
