/**
 * `npm run bench:layouts [-- --rounds N --seconds S]`: the full service (API
 * and batch worker, draining into PostgreSQL) at saturation in several process
 * layouts on this machine, to choose `API_PROCESSES` and where the worker runs.
 *
 * Every layout runs at once, each with its own database and key prefix (an idle
 * layout only polls its queue). Each round saturates every layout in turn with
 * wrk (100 connections, every request from a distinct user), the order
 * reversed every other round so that each layout sees the same stretches of a
 * shared machine; before each run, that layout's worker has drained what the
 * last run queued. Prints every run and each layout's median, beside the
 * median of the default layout (what `npm start` runs).
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Running } from './lib/procs.js';
import { createCoupon, drained, serviceEnv, startService } from './lib/service.js';
import { describeFailure } from './lib/setup-error.js';
import {
  checkStores,
  databaseUrlOf,
  deleteKeys,
  dropDatabase,
  resetDatabase,
} from './lib/stores.js';
import { saturate, wrkVersion } from './load/saturate.js';

const ROOT = join(import.meta.dirname, '..');
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_ADMIN_URL =
  process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ADMIN_TOKEN = 'bench-admin-token-0123456789';
const RUN = Date.now().toString(36);
const PREFIX = `bench-layouts:${RUN}:`;

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} takes a whole number of at least 1`);
    process.exit(2);
  }
  return value;
}

const cores = availableParallelism();
const settings = {
  rounds: option('rounds', 5),
  seconds: option('seconds', 8),
  connections: 100,
  batchSize: 2000,
  batchIntervalMs: 100,
  batchLanes: 2,
  workerNice: 10,
};

interface Layout {
  readonly name: string;
  /** The environment of each process the layout runs (one command each). */
  readonly processes: readonly Record<string, string>[];
}

/** The most API processes the service accepts (API_PROCESSES). */
const MAX_API_PROCESSES = 64;

/**
 * What `npm start` runs first (its default API_PROCESSES is the number of cores), then the
 * alternatives. On one core `npm start` is already the single process; on 64 cores or more
 * there is no "one more".
 */
function layoutsFor(cores: number): Layout[] {
  const apiProcesses = Math.min(cores, MAX_API_PROCESSES);
  const all = (n: number): Layout => ({
    name: n === 1 ? 'API and worker in one process' : `API_PROCESSES=${n} + worker process`,
    processes: [{ ROLE: 'all', API_PROCESSES: String(n) }],
  });
  const npmStart = all(apiProcesses);
  const candidates: Layout[] = [
    { ...npmStart, name: `${npmStart.name} (npm start)` },
    ...(apiProcesses + 1 <= MAX_API_PROCESSES ? [all(apiProcesses + 1)] : []),
    {
      name: 'API_PROCESSES=1 + worker process',
      processes: [{ ROLE: 'api', API_PROCESSES: '1' }, { ROLE: 'worker' }],
    },
    all(1),
  ];
  const seen = new Set<string>();
  return candidates.filter((l) => {
    const key = JSON.stringify(l.processes);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const layouts = layoutsFor(cores);

interface Started {
  readonly layout: Layout;
  readonly port: number;
  readonly prefix: string;
  readonly couponId: number;
  readonly processes: Running[];
  readonly runs: number[];
  /** Answers above 399, socket errors and timeouts, over every measured run. */
  failed: number;
}

async function stopAll(processes: readonly Running[]): Promise<void> {
  for (const p of processes) await p.stop();
}

type CleanUpStep = readonly [what: string, step: () => Promise<void>];

/** Runs every clean-up step even when one fails; failures are reported, not thrown. */
async function cleanUp(steps: readonly CleanUpStep[]): Promise<void> {
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (err) {
      console.error(`clean-up: ${what} failed: ${(err as Error).message}`);
    }
  }
}

const databaseOf = (index: number) => `coupons_bench_layout_${index}`;

async function startLayout(layout: Layout, index: number): Promise<Started> {
  const database = databaseOf(index);
  await resetDatabase(PG_ADMIN_URL, database);
  const port = 3400 + index;
  const prefix = `${PREFIX}${index}:`;
  const stores = {
    databaseUrl: databaseUrlOf(PG_ADMIN_URL, database),
    redisUrl: REDIS_URL,
    prefix,
    adminToken: ADMIN_TOKEN,
  };
  const processes: Running[] = [];
  try {
    for (const env of layout.processes) {
      const extra = { PORT: env.ROLE === 'worker' ? '0' : String(port), ...env };
      processes.push(await startService(serviceEnv(stores, settings, extra)));
    }
    const couponId = await createCoupon(port, ADMIN_TOKEN, `layouts ${RUN}`, 10_000_000);
    return { layout, port, prefix, couponId, processes, runs: [], failed: 0 };
  } catch (err) {
    // Nothing of a layout that did not start is left running (or holding its port).
    await stopAll(processes);
    throw err;
  }
}

function saturateLayout(s: Started, seconds: number, userPrefix: string) {
  return saturate({
    url: `http://127.0.0.1:${s.port}`,
    path: `/coupons/${s.couponId}/issue-requests`,
    connections: settings.connections,
    threads: 1,
    durationSec: seconds,
    userPrefix,
  });
}

/** The middle value, or the mean of the two middle values of an even count. */
const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const lower = sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
  const upper = sorted[Math.floor(sorted.length / 2)] ?? 0;
  return (lower + upper) / 2;
};
const num = (n: number) => Math.round(n).toLocaleString('en');

async function main(): Promise<void> {
  await checkStores(REDIS_URL, PG_ADMIN_URL);
  console.log(`process layouts of the full service at saturation, ${cores} cores`);
  console.log(`wrk: ${wrkVersion()}`);
  console.log(`settings: ${JSON.stringify(settings)}`);
  console.log('building…');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  const redis = new Redis(REDIS_URL);
  const started: Started[] = [];
  try {
    for (const [i, layout] of layouts.entries()) started.push(await startLayout(layout, i));
    for (const s of started) await saturateLayout(s, 3, `w${RUN}`);
    for (let round = 0; round < settings.rounds; round += 1) {
      const order = round % 2 === 0 ? started : [...started].reverse();
      for (const s of order) {
        await drained(redis, s.prefix, s.couponId, s.layout.name);
        const result = await saturateLayout(s, settings.seconds, `r${round}${RUN}`);
        s.runs.push(result.throughputRps);
        s.failed += result.non2xx + result.errors;
        console.log(
          `round ${round + 1}: ${s.layout.name}: ${num(result.throughputRps)} req/s (p99 ${result.latencyMs.p99} ms, ${result.non2xx + result.errors} failed)`,
        );
      }
    }
  } finally {
    await cleanUp([
      ['stopping the services', () => stopAll(started.flatMap((s) => s.processes))],
      ['deleting the Redis keys', () => deleteKeys(redis, `${PREFIX}*`)],
      ...layouts.map((_, i): CleanUpStep => [
        `dropping ${databaseOf(i)}`,
        () => dropDatabase(PG_ADMIN_URL, databaseOf(i)),
      ]),
    ]);
    redis.disconnect();
  }
  const reference = median(started[0]?.runs ?? []);
  console.log('\nlayout                                        median req/s  / npm start  runs');
  for (const s of started) {
    const m = median(s.runs);
    console.log(
      `${s.layout.name.padEnd(46)}${num(m).padEnd(14)}${(m / reference).toFixed(2).padEnd(13)}${s.runs.map(num).join(', ')}`,
    );
  }
  // Every request is a distinct user of an event with ten million coupons: any failed answer
  // means a layout does not work, and the comparison says nothing.
  const failing = started.filter((s) => s.failed > 0 || s.runs.some((r) => r === 0));
  if (failing.length > 0) {
    throw new Error(
      `failed answers or no throughput in: ${failing.map((s) => `${s.layout.name} (${num(s.failed)} failed)`).join('; ')}`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(describeFailure(err));
  process.exit(1);
});
