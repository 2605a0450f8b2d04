import { randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { HealthReport } from './api/app.js';
import type { IdGenerator, IssueGate, IssueLedger, IssueQueue, Logger } from './domain/ports.js';
import { NONCE_LENGTH } from './domain/issue-request.js';
import { CloseCoupon } from './domain/use-cases/close-coupon.js';
import { CouponGateLoader } from './domain/use-cases/coupon-gate-loader.js';
import { CreateCoupon } from './domain/use-cases/create-coupon.js';
import { GetCoupon } from './domain/use-cases/get-coupon.js';
import { GetIssueRequest } from './domain/use-cases/get-issue-request.js';
import { ProcessNextBatch } from './domain/use-cases/process-next-batch.js';
import { SubmitIssueRequest } from './domain/use-cases/submit-issue-request.js';
import type { Config } from './infra/config.js';
import { checkPostgres, createDatabase, createPool } from './infra/db/client.js';
import { PgCouponRepository } from './infra/db/coupon.repository.js';
import { PgIssueLedger } from './infra/db/issue-ledger.repository.js';
import { connectRedis } from './infra/redis/client.js';
import { RedisIssueGate } from './infra/redis/issue-gate.store.js';
import { RedisIssueQueue } from './infra/redis/issue-queue.store.js';
import { RedisKeys } from './infra/redis/keys.js';
import { RedisScripts } from './infra/redis/scripts.js';
import { DrainWorker } from './scheduler/drain-worker.js';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export const ids: IdGenerator = {
  nonce() {
    const bytes = randomBytes(NONCE_LENGTH);
    let out = '';
    for (const b of bytes) out += ALPHANUMERIC[b % ALPHANUMERIC.length];
    return out;
  },
  batchId: () => randomUUID(),
};

/** Lets tests put a fake (or a fault) in front of a port. */
export interface PortOverrides {
  readonly gate?: (real: IssueGate) => IssueGate;
  readonly queue?: (real: IssueQueue) => IssueQueue;
  readonly ledger?: (real: IssueLedger) => IssueLedger;
}

export interface Container {
  readonly config: Config;
  readonly redis: Redis;
  readonly pool: pg.Pool;
  readonly keys: RedisKeys;
  readonly gate: IssueGate;
  readonly queue: IssueQueue;
  readonly ledger: IssueLedger;
  readonly api: {
    createCoupon: CreateCoupon;
    getCoupon: GetCoupon;
    closeCoupon: CloseCoupon;
    submitIssueRequest: SubmitIssueRequest;
    getIssueRequest: GetIssueRequest;
    health: () => Promise<HealthReport>;
    adminToken: string;
    logger: Logger;
  };
  readonly processNextBatch: ProcessNextBatch;
  readonly worker: DrainWorker;
  close(): Promise<void>;
}

/** Connects to Redis and PostgreSQL (failing fast with a clear message) and wires every part. */
export async function createContainer(
  config: Config,
  logger: Logger,
  overrides: PortOverrides = {},
): Promise<Container> {
  const pool = createPool(config.databaseUrl, {
    applicationName: `coupon-issuance:${config.role}`,
    onError: (err) => logger.warn('idle PostgreSQL connection failed', { error: err.message }),
  });
  let redis: Redis | undefined;
  let workerRedis: Redis | undefined;
  const onRedisError = throttled(logger, 'Redis connection error');
  try {
    await checkPostgres(pool, config.databaseUrl);
    redis = await connectRedis(config.redisUrl, {
      name: `coupon-issuance:${config.role}`,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      onError: onRedisError,
    });
    // The worker's scripts move whole batches: its own connection, with a longer bound,
    // so that neither side's commands wait behind the other's.
    workerRedis = await connectRedis(config.redisUrl, {
      name: `coupon-issuance:${config.role}:worker`,
      commandTimeoutMs: Math.max(5_000, config.redisCommandTimeoutMs),
      onError: onRedisError,
    });
  } catch (err) {
    redis?.disconnect();
    await pool.end().catch(() => undefined);
    throw err;
  }
  const db = createDatabase(pool);
  const keys = new RedisKeys(config.redisKeyPrefix);
  const scripts = new RedisScripts(redis);
  const workerScripts = new RedisScripts(workerRedis);

  const coupons = new PgCouponRepository(db);
  const realGate = new RedisIssueGate(redis, scripts, keys);
  const realQueue = new RedisIssueQueue(workerRedis, workerScripts, keys);
  const realLedger = new PgIssueLedger(pool, db);
  const gate = overrides.gate?.(realGate) ?? realGate;
  const queue = overrides.queue?.(realQueue) ?? realQueue;
  const ledger = overrides.ledger?.(realLedger) ?? realLedger;

  const loader = new CouponGateLoader({ coupons, gate });
  const processNextBatch = new ProcessNextBatch({ queue, ledger, ids });
  const worker = new DrainWorker({
    queue,
    processNextBatch,
    logger,
    settings: {
      batchSize: config.batchSize,
      batchCron: config.batchCron,
      batchIntervalMs: config.batchIntervalMs,
      leaseMs: config.leaseMs,
    },
  });
  const connectedRedis = redis;
  const connectedWorkerRedis = workerRedis;
  const health = async (): Promise<HealthReport> => {
    const [redisOk, postgresOk] = await Promise.all([
      connectedRedis.ping().then(
        () => true,
        () => false,
      ),
      pool.query('SELECT 1').then(
        () => true,
        () => false,
      ),
    ]);
    return { redis: redisOk, postgres: postgresOk };
  };

  return {
    config,
    redis,
    pool,
    keys,
    gate,
    queue,
    ledger,
    api: {
      createCoupon: new CreateCoupon({ coupons, gate, logger }),
      getCoupon: new GetCoupon({ coupons }),
      closeCoupon: new CloseCoupon({ coupons, gate }),
      submitIssueRequest: new SubmitIssueRequest({ gate, loader, ids }),
      getIssueRequest: new GetIssueRequest({ gate, ledger }),
      health,
      adminToken: config.adminToken,
      logger,
    },
    processNextBatch,
    worker,
    async close() {
      await worker.stop();
      connectedRedis.disconnect();
      connectedWorkerRedis.disconnect();
      await pool.end();
    },
  };
}

/** At most one line per period for a repeating error, so an outage does not flood the log. */
function throttled(logger: Logger, message: string, periodMs = 5_000): (err: Error) => void {
  let last = 0;
  let suppressed = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < periodMs) {
      suppressed += 1;
      return;
    }
    logger.warn(message, { error: err.message, suppressed });
    last = now;
    suppressed = 0;
  };
}
