import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { RedisKeys } from '../../src/infra/redis/keys.js';
import { startProcess, type Running } from './procs.js';

const ENTRY_POINT = join(import.meta.dirname, '..', '..', 'dist', 'src', 'main.js');

/** Where a service under test keeps its state, and the operator token it accepts. */
export interface ServiceStores {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly prefix: string;
  readonly adminToken: string;
}

/** The worker settings every bench pins down and prints. */
export interface WorkerSettings {
  readonly batchSize: number;
  readonly batchIntervalMs: number;
  readonly batchLanes: number;
  readonly workerNice: number;
}

/** The environment of one service process; `extra` (ROLE, PORT, API_PROCESSES, …) wins. */
export function serviceEnv(
  stores: ServiceStores,
  worker: WorkerSettings,
  extra: Record<string, string>,
): Record<string, string> {
  const identity = Boolean(extra.JWT_SECRET || extra.JWT_JWKS_URL);
  return {
    // Production refuses to start without users' tokens; the contenders whose load names users
    // in the body run as development, which changes nothing on the paths measured (NODE_ENV
    // only picks defaults at start-up: the Redis eviction check warns instead of refusing).
    NODE_ENV: identity ? 'production' : 'development',
    DATABASE_URL: stores.databaseUrl,
    REDIS_URL: stores.redisUrl,
    REDIS_KEY_PREFIX: stores.prefix,
    ADMIN_TOKEN: stores.adminToken,
    // Readiness is read from the info lines ("all processes ready", "batch worker started").
    LOG_LEVEL: 'info',
    BATCH_SIZE: String(worker.batchSize),
    BATCH_INTERVAL_MS: String(worker.batchIntervalMs),
    BATCH_LANES: String(worker.batchLanes),
    WORKER_NICE: String(worker.workerNice),
    // Every bench request comes from one address: a contender that measures limits sets them.
    RATE_LIMIT_ENABLED: 'false',
    ...extra,
  };
}

/**
 * Starts the built service (dist/) with this environment and resolves once it is ready:
 * a worker process when its loop started, a single process when it listens (with
 * ROLE=all its worker loop starts right after), a supervisor when every process it runs
 * is ready.
 */
export function startService(env: Record<string, string>): Promise<Running> {
  const ready =
    env.ROLE === 'worker'
      ? 'batch worker started'
      : env.API_PROCESSES === '1'
        ? 'listening'
        : 'all processes ready';
  return startProcess('service', process.execPath, [ENTRY_POINT], env, (line) =>
    line.includes(ready),
  );
}

/** Opens an event on the service at `port`; resolves with its coupon id. */
export async function createCoupon(
  port: number,
  adminToken: string,
  name: string,
  totalQuantity: number,
): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/coupons`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ name, totalQuantity }),
  });
  if (res.status !== 201) throw new Error(`create coupon: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: number }).id;
}

/**
 * Resolves once the service's worker has taken and settled everything queued for the
 * coupon (nothing queued, nothing in flight); `what` names the service in the timeout.
 */
export async function drained(
  redis: Redis,
  prefix: string,
  couponId: number,
  what: string,
): Promise<void> {
  const k = new RedisKeys(prefix).coupon(couponId);
  const deadline = Date.now() + 300_000;
  while ((await redis.zcard(k.queue)) + (await redis.hlen(k.inflight)) > 0) {
    if (Date.now() > deadline) throw new Error(`${what} did not drain the queue in 5 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
