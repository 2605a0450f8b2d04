import { throttled } from './infra/throttled-log.js';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { ApiDeps, HealthReport } from './api/app.js';
import { createTokenVerifier } from './api/token-verifier.js';
import type { Limiters } from './api/limits.js';
import { NONCE_LENGTH } from './domain/issue-request.js';
import {
  type EventScheduler,
  type GateMaintenance,
  type IdGenerator,
  type IssueGate,
  type IssueLedger,
  type IssueQueue,
  type Logger,
} from './domain/ports.js';
import { BatchSettler } from './domain/use-cases/batch-settler.js';
import { CheckConsistency } from './domain/use-cases/check-consistency.js';
import { CloseCoupon } from './domain/use-cases/close-coupon.js';
import { CloseEvent } from './domain/use-cases/close-event.js';
import { CouponGateLoader } from './domain/use-cases/coupon-gate-loader.js';
import { CouponStatsQuery } from './domain/use-cases/coupon-stats.js';
import { CreateCoupon } from './domain/use-cases/create-coupon.js';
import { GetCoupon } from './domain/use-cases/get-coupon.js';
import { GetIssueRequest } from './domain/use-cases/get-issue-request.js';
import { ListCoupons } from './domain/use-cases/list-coupons.js';
import { OpenCoupon } from './domain/use-cases/open-coupon.js';
import { PauseCoupon } from './domain/use-cases/pause-coupon.js';
import { OpenEvent } from './domain/use-cases/open-event.js';
import { ProcessNextBatch } from './domain/use-cases/process-next-batch.js';
import { ReactivateLiveCoupons } from './domain/use-cases/reactivate-live-coupons.js';
import { ReconcileEvents } from './domain/use-cases/reconcile-events.js';
import { RecoverExpiredBatches } from './domain/use-cases/recover-expired-batches.js';
import { RestoreGates } from './domain/use-cases/restore-gates.js';
import { ResumeCoupon } from './domain/use-cases/resume-coupon.js';
import { RetireEvent } from './domain/use-cases/retire-event.js';
import { SubmitIssueRequest } from './domain/use-cases/submit-issue-request.js';
import { SyncCoupon } from './domain/use-cases/sync-coupon.js';
import { UpdateCoupon } from './domain/use-cases/update-coupon.js';
import type { Config, RateLimitSettings } from './infra/config.js';
import { checkPostgres, createDatabase, createPool } from './infra/db/client.js';
import { pendingMigrations } from './infra/db/migrate.js';
import { PgCouponRepository } from './infra/db/coupon.repository.js';
import { PgIssueLedger } from './infra/db/issue-ledger.repository.js';
import { faultPoints } from './infra/fault-points.js';
import { LifecycleQueue } from './infra/jobs/lifecycle-queue.js';
import { apiMetrics, PrometheusMetrics } from './infra/metrics/prometheus.js';
import { nonceSource } from './infra/nonce.js';
import { connectRedis } from './infra/redis/client.js';
import { RedisEventControl } from './infra/redis/event-control.store.js';
import { RedisEventKeys } from './infra/redis/event-keys.store.js';
import { RedisGateMaintenance } from './infra/redis/gate-maintenance.store.js';
import { RedisHeartbeats } from './infra/redis/heartbeat.store.js';
import { RedisIssueGate } from './infra/redis/issue-gate.store.js';
import { RedisIssueQueue } from './infra/redis/issue-queue.store.js';
import { RedisKeys } from './infra/redis/keys.js';
import { redisLimiter } from './infra/redis/rate-limiter.store.js';
import { RedisScripts } from './infra/redis/scripts.js';
import { checkRedisSettings } from './infra/redis/settings-check.js';
import { DrainWorker } from './scheduler/drain-worker.js';
import { WorkerHeartbeat } from './scheduler/worker-heartbeat.js';
import { LifecycleJobs } from './scheduler/lifecycle.js';

export const ids: IdGenerator = {
  nonce: nonceSource(NONCE_LENGTH),
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
  readonly workerRedis: Redis;
  readonly pool: pg.Pool;
  readonly keys: RedisKeys;
  readonly gate: IssueGate;
  readonly queue: IssueQueue;
  readonly ledger: IssueLedger;
  readonly maintenance: GateMaintenance;
  /** What the HTTP app needs (see createApp), and the scheduler the operator tools move jobs with. */
  readonly api: ApiDeps & {
    /** Moves an event's lifecycle jobs after its window or state changed. */
    readonly scheduler: EventScheduler;
  };
  /** This process's metrics; null when METRICS_ENABLED=false. */
  readonly metrics: PrometheusMetrics | null;
  readonly processNextBatch: ProcessNextBatch;
  readonly recover: RecoverExpiredBatches;
  readonly worker: DrainWorker;
  /** Started with the worker: tells the API processes' /readyz that a worker is alive. */
  readonly heartbeat: WorkerHeartbeat;
  /** From now on /readyz answers 503 (the process is stopping). */
  beginShutdown(): void;
  /** The event lifecycle jobs (BullMQ): `start()` in the worker role. */
  readonly lifecycle: LifecycleJobs;
  readonly lifecycleQueue: LifecycleQueue;
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
    // Below the lease, so a frozen worker's transaction is gone before its batch is recovered.
    idleInTransactionTimeoutMs: Math.max(1_000, Math.floor(config.leaseMs / 2)),
    onError: throttled(logger, 'idle PostgreSQL connection failed'),
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
      // Every accept and status read is one small command on this connection, hundreds at once.
      autoPipelining: true,
    });
    // The worker's scripts move whole batches: its own connection, with a longer bound,
    // so that neither side's commands wait behind the other's.
    workerRedis = await connectRedis(config.redisUrl, {
      name: `coupon-issuance:${config.role}:worker`,
      commandTimeoutMs: Math.max(5_000, config.redisCommandTimeoutMs),
      onError: onRedisError,
    });
    await checkRedisSettings(redis, config.redisEvictionCheck, logger);
  } catch (err) {
    redis?.disconnect();
    workerRedis?.disconnect();
    await pool.end().catch(() => undefined);
    throw err;
  }
  const db = createDatabase(pool);
  const keys = new RedisKeys(config.redisKeyPrefix);
  const scripts = new RedisScripts(redis);
  const workerScripts = new RedisScripts(workerRedis);
  const faults = faultPoints(config.faultPoints, (point, action, batchId) =>
    logger.warn('fault point reached', { point, action: action.kind, batchId }),
  );

  const coupons = new PgCouponRepository(db);
  const realGate = new RedisIssueGate(redis, scripts, keys, config.redisCommandTimeoutMs);
  const realQueue = new RedisIssueQueue(workerRedis, workerScripts, keys);
  const realLedger = new PgIssueLedger(pool, db, faults);
  await realGate.measureClockOffset();
  const clockTimer = setInterval(
    () => void realGate.measureClockOffset().catch(() => undefined),
    60_000,
  );
  clockTimer.unref();
  const gate = overrides.gate?.(realGate) ?? realGate;
  const queue = overrides.queue?.(realQueue) ?? realQueue;
  const ledger = overrides.ledger?.(realLedger) ?? realLedger;
  const maintenance = new RedisGateMaintenance(workerRedis, workerScripts, keys);

  const loader = new CouponGateLoader({ coupons, gate });
  const control = new RedisEventControl(redis, scripts, keys);
  const runsWorker = config.role !== 'api';
  const probeRedis = redis;
  const metrics = config.metrics
    ? new PrometheusMetrics({
        runsWorker,
        probe: {
          // The live events are those in the worker's rounds; the real queue, not a test's fake.
          liveQueues: async () => control.figures(await realQueue.activeCoupons()),
          redisUp: () => probeRedis.ping().then(() => true),
          postgresUp: () => pool.query('select 1').then(() => true),
        },
      })
    : null;
  const batchMetrics = metrics ? { metrics } : {};
  const lifecycleQueue = new LifecycleQueue({
    redisUrl: config.redisUrl,
    keys,
    logger,
    name: `coupon-issuance:${config.role}`,
    redis,
  });
  // Every change of an event's window or state moves its lifecycle jobs.
  const scheduler: EventScheduler = lifecycleQueue;
  // Sync and recovery need each other (a batch settled against a rebuilt gate triggers a sync;
  // a sync settles expired batches first): the settler reaches the sync through a closure.
  const settler: BatchSettler = new BatchSettler({
    queue,
    onGateRebuilt: (id: number): Promise<unknown> => syncCoupon.execute(id),
    ...batchMetrics,
  });
  const recover: RecoverExpiredBatches = new RecoverExpiredBatches({
    queue,
    ledger,
    settler,
    ...batchMetrics,
  });
  const syncCoupon = new SyncCoupon({
    coupons,
    gate,
    maintenance,
    recover,
    leaseMs: config.leaseMs,
  });
  const processNextBatch = new ProcessNextBatch({
    queue,
    ledger,
    settler,
    ids,
    faults,
    ...batchMetrics,
  });
  const worker = new DrainWorker({
    queue,
    processNextBatch,
    recover,
    restoreGates: new RestoreGates({ coupons, maintenance, loader, sync: syncCoupon, logger }),
    reactivate: new ReactivateLiveCoupons({ coupons, queue }),
    logger,
    ...batchMetrics,
    settings: {
      batchSize: config.batchSize,
      batchCron: config.batchCron,
      batchIntervalMs: config.batchIntervalMs,
      lanes: config.batchLanes,
      leaseMs: config.leaseMs,
    },
  });
  const events = new RedisEventKeys(workerRedis, workerScripts, keys);
  const checkConsistency = new CheckConsistency({ coupons, maintenance });
  const closeEvent = new CloseEvent({
    coupons,
    gate,
    events,
    logger,
    keyExpiryAfterEndMs: config.keyExpiryAfterEndMs,
    scheduler,
  });
  const lifecycle = new LifecycleJobs({
    jobs: lifecycleQueue,
    coupons,
    open: new OpenEvent({
      coupons,
      gate,
      events,
      logger,
      keyExpiryAfterEndMs: config.keyExpiryAfterEndMs,
    }),
    close: closeEvent,
    reconcile: new ReconcileEvents({
      coupons,
      check: checkConsistency,
      gate,
      queue,
      scheduler,
      events,
      retire: new RetireEvent({ coupons, events, logger }),
      close: closeEvent,
      logger,
      keyExpiryAfterEndMs: config.keyExpiryAfterEndMs,
    }),
    logger,
    reconcileEveryMs: config.reconcileEveryMs,
  });
  const connectedRedis = redis;
  const connectedWorkerRedis = workerRedis;
  const heartbeats = new RedisHeartbeats(scripts, keys);
  const heartbeat = new WorkerHeartbeat(
    new RedisHeartbeats(workerScripts, keys),
    logger,
    Math.min(1_000, Math.floor(config.workerHeartbeatStaleMs / 3)),
  );
  let shuttingDown = false;
  const health = async (): Promise<HealthReport> => {
    const failed = () => undefined;
    const [redisOk, pending, last] = await Promise.all([
      connectedRedis.ping().then(
        () => true,
        () => false,
      ),
      // Also the PostgreSQL check: it answers only when PostgreSQL does.
      pendingMigrations(pool).catch(failed),
      heartbeats.last().then((beat) => beat ?? null, failed),
    ]);
    return {
      redis: redisOk,
      postgres: pending !== undefined,
      ...(pending === undefined ? {} : { pendingMigrations: pending }),
      ...(last === undefined
        ? {}
        : {
            workerHeartbeat: last && {
              ...last,
              fresh: last.ageMs <= config.workerHeartbeatStaleMs,
            },
          }),
      shuttingDown,
      ...(runsWorker ? { worker: worker.state() } : {}),
    };
  };

  return {
    config,
    redis,
    workerRedis,
    pool,
    keys,
    gate,
    queue,
    ledger,
    maintenance,
    api: {
      createCoupon: new CreateCoupon({ coupons, gate, logger, scheduler }),
      getCoupon: new GetCoupon({ coupons }),
      closeCoupon: new CloseCoupon({ coupons, gate, scheduler }),
      syncCoupon,
      checkConsistency,
      listCoupons: new ListCoupons({ coupons, control }),
      updateCoupon: new UpdateCoupon({ coupons, control, scheduler, logger }),
      openCoupon: new OpenCoupon({ coupons, control, loader, scheduler }),
      pauseCoupon: new PauseCoupon({ coupons, control, scheduler }),
      resumeCoupon: new ResumeCoupon({ coupons, control, scheduler }),
      couponStats: new CouponStatsQuery({ coupons, control }),
      submitIssueRequest: new SubmitIssueRequest({ gate, loader, ids }),
      getIssueRequest: new GetIssueRequest({ gate, ledger, loader, coupons }),
      scheduler,
      health,
      shuttingDown: () => shuttingDown,
      adminToken: config.adminToken,
      tokenVerifier: config.identity ? createTokenVerifier(config.identity) : null,
      logger,
      ...(config.rateLimits
        ? { limiters: rateLimiters(redis, keys, config.rateLimits, logger) }
        : {}),
      trustProxy: config.trustProxy,
      corsOrigins: config.corsOrigins,
      onLimiterError: throttledUnknown(logger, 'rate limit not checked: request let through'),
      accessLog: config.accessLog,
      ...(metrics && config.metrics ? { metrics: apiMetrics(metrics, config.metrics.token) } : {}),
    },
    metrics,
    processNextBatch,
    recover,
    worker,
    heartbeat,
    beginShutdown() {
      shuttingDown = true;
    },
    lifecycle,
    lifecycleQueue,
    async close() {
      shuttingDown = true;
      clearInterval(clockTimer);
      await worker.stop();
      await Promise.all([heartbeat.stop(), lifecycle.stop()]);
      connectedRedis.disconnect();
      connectedWorkerRedis.disconnect();
      await pool.end();
    },
  };
}

/**
 * The rate limits over the API connection (auto-pipelined: a request's checks share its
 * write with other requests' commands). When Redis fails, each limit counts in this
 * process instead (fail open across processes, still bounded within one) and says so,
 * throttled: accept needs Redis anyway, and a limiter that answered 503 would also take
 * down the routes that only need PostgreSQL, and the probes.
 */
function rateLimiters(
  redis: Redis,
  keys: RedisKeys,
  settings: RateLimitSettings,
  logger: Logger,
): Limiters {
  const warn = throttled(logger, 'rate limiter Redis failed: counting in this process');
  const fallback = () => warn(new Error('Redis unavailable for rate limits'));
  const limiter = (name: string, limit: RateLimitSettings['ip'], blockAt?: number) =>
    limit &&
    redisLimiter(redis, name, keys.rateLimit(name), limit, {
      onFallback: fallback,
      ...(blockAt === undefined ? {} : { blockAt }),
    });
  const ip = limiter('ip', settings.ip);
  const accept = limiter('accept', settings.accept);
  const status = limiter('status', settings.status);
  // Blocked in memory from the failure that reaches the limit: the next attempt is refused.
  const authFailure = limiter('auth', settings.authFailure, settings.authFailure?.points);
  return {
    ...(ip ? { ip } : {}),
    ...(accept ? { accept } : {}),
    ...(status ? { status } : {}),
    ...(authFailure ? { authFailure } : {}),
  };
}

function throttledUnknown(logger: Logger, message: string): (err: unknown) => void {
  const log = throttled(logger, message);
  return (err) => log(err instanceof Error ? err : new Error(String(err)));
}
