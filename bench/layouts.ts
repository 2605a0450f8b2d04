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
import { availableParallelism } from 'node:os';
import { Redis } from 'ioredis';
import { RedisKeys } from '../src/infra/redis/keys.js';
import type { Running } from './lib/procs.js';
import { createCoupon, serviceEnv, startService } from './lib/service.js';
import {
  checkStores,
  databaseUrlOf,
  deleteKeys,
  dropDatabase,
  resetDatabase,
} from './lib/stores.js';
import { saturate, wrkVersion } from './load/saturate.js';

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

const layouts: Layout[] = [
  {
    name: `API_PROCESSES=${cores} + worker process (npm start)`,
    processes: [{ ROLE: 'all', API_PROCESSES: String(cores) }],
  },
  {
    name: `API_PROCESSES=${cores + 1} + worker process`,
    processes: [{ ROLE: 'all', API_PROCESSES: String(cores + 1) }],
  },
  {
    name: 'API_PROCESSES=1 + worker process',
    processes: [{ ROLE: 'api', API_PROCESSES: '1' }, { ROLE: 'worker' }],
  },
  {
    name: 'API and worker in one process',
    processes: [{ ROLE: 'all', API_PROCESSES: '1' }],
  },
];

interface Started {
  readonly layout: Layout;
  readonly port: number;
  readonly prefix: string;
  readonly couponId: number;
  readonly processes: Running[];
  readonly runs: number[];
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
  for (const env of layout.processes) {
    const extra = { PORT: env.ROLE === 'worker' ? '0' : String(port), ...env };
    processes.push(await startService(serviceEnv(stores, settings, extra)));
  }
  const couponId = await createCoupon(port, ADMIN_TOKEN, `layouts ${RUN}`, 10_000_000);
  return { layout, port, prefix, couponId, processes, runs: [] };
}

/** Resolves once the layout's worker has taken and settled everything queued. */
async function drained(redis: Redis, s: Started): Promise<void> {
  const k = new RedisKeys(s.prefix).coupon(s.couponId);
  const deadline = Date.now() + 300_000;
  while ((await redis.zcard(k.queue)) + (await redis.hlen(k.inflight)) > 0) {
    if (Date.now() > deadline) throw new Error(`${s.layout.name} did not drain in 5 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 100));
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

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
};
const num = (n: number) => Math.round(n).toLocaleString('en');

async function main(): Promise<void> {
  await checkStores(REDIS_URL, PG_ADMIN_URL);
  console.log(`process layouts of the full service at saturation, ${cores} cores`);
  console.log(`wrk: ${wrkVersion()}`);
  console.log(`settings: ${JSON.stringify(settings)}`);
  const redis = new Redis(REDIS_URL);
  const started: Started[] = [];
  try {
    for (const [i, layout] of layouts.entries()) started.push(await startLayout(layout, i));
    for (const s of started) await saturateLayout(s, 3, `w${RUN}`);
    for (let round = 0; round < settings.rounds; round += 1) {
      const order = round % 2 === 0 ? started : [...started].reverse();
      for (const s of order) {
        await drained(redis, s);
        const result = await saturateLayout(s, settings.seconds, `r${round}${RUN}`);
        s.runs.push(result.throughputRps);
        console.log(
          `round ${round + 1}: ${s.layout.name}: ${num(result.throughputRps)} req/s (p99 ${result.latencyMs.p99} ms, ${result.non2xx + result.errors} failed)`,
        );
      }
    }
  } finally {
    for (const s of started) for (const p of s.processes) await p.stop();
    await deleteKeys(redis, `${PREFIX}*`);
    for (const i of layouts.keys()) await dropDatabase(PG_ADMIN_URL, databaseOf(i));
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
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
