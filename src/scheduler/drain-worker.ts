import cron, { type ScheduledTask } from 'node-cron';
import { DependencyUnavailableError } from '../domain/errors.js';
import type { IssueQueue, Logger } from '../domain/ports.js';
import type { BatchReport } from '../domain/use-cases/batch-settler.js';
import { BatchFailedError, type ProcessNextBatch } from '../domain/use-cases/process-next-batch.js';
import type { ReactivateLiveCoupons } from '../domain/use-cases/reactivate-live-coupons.js';
import type { RecoverExpiredBatches } from '../domain/use-cases/recover-expired-batches.js';
import type { RestoreGates } from '../domain/use-cases/restore-gates.js';

export interface DrainSettings {
  readonly batchSize: number;
  readonly batchCron: string;
  readonly batchIntervalMs: number;
  readonly leaseMs: number;
  /**
   * How many batches one worker process keeps in flight (BATCH_LANES). Each lane takes,
   * commits and settles on its own, so one lane's Redis work overlaps another's
   * transaction; batches of one coupon still commit one at a time (the coupon's row lock).
   */
  readonly lanes?: number;
}

/** What the worker reports for monitoring, besides what the use cases report. */
export interface WorkerMetrics {
  batch(size: number, seconds: number): void;
  /** A pass over the queues began (Unix milliseconds). */
  workerTick(nowMs: number): void;
}

export type WorkerState = 'idle' | 'draining' | 'backing-off' | 'stopped';

const MAINTENANCE_EVERY_MS = 1_000;
/** Reading the live coupons costs a PostgreSQL query: every few rounds, not every one. */
const REACTIVATE_EVERY_MS = 5_000;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 5_000;
const FAILURE_LOG_EVERY_MS = 5_000;

/**
 * The batch worker. node-cron wakes it (BATCH_CRON, every second by default);
 * within a tick it takes batch after batch while batches come back full and polls
 * every BATCH_INTERVAL_MS until the next tick, so a request waits far less
 * than a tick and throughput is not one batch per tick. A tick that arrives
 * while the loop runs only extends it: ticks never overlap in one process.
 * Several processes may drain at once: each batch is taken atomically in
 * Redis, so no request is decided twice.
 *
 * About once a second it also settles batches whose lease expired, checks
 * that Redis still holds its marker (rebuilding the gates if it lost them),
 * and drops finished coupons (closed or ended, nothing left) from its rounds;
 * every 5 s it puts back in its rounds live coupons that went missing from them.
 * When Redis or PostgreSQL fails it backs off (250 ms doubling to 5 s) and
 * logs one line per 5 s at most while the failure lasts, then one when it is over.
 */
export class DrainWorker {
  private task: ScheduledTask | undefined;
  private loop: Promise<void> | undefined;
  private deadline = 0;
  private stopping = false;
  private readonly wakers = new Set<() => void>();
  private nextMaintenance = 0;
  private nextReactivation = 0;
  private failures = 0;
  /** Counts failures ever, so a pass that began before the latest failure cannot end the back-off. */
  private failureSeq = 0;
  private retryAt = 0;
  private failingSince = 0;
  private lastFailureLog = Number.NEGATIVE_INFINITY;
  private suppressed = 0;
  private lastError: string | undefined;

  constructor(
    private readonly deps: {
      queue: IssueQueue;
      processNextBatch: ProcessNextBatch;
      recover: RecoverExpiredBatches;
      restoreGates: RestoreGates;
      reactivate: ReactivateLiveCoupons;
      logger: Logger;
      settings: DrainSettings;
      now?: () => number;
      metrics?: WorkerMetrics;
    },
  ) {}

  start(): void {
    this.task = cron.schedule(this.deps.settings.batchCron, () => this.tick(), { name: 'drain' });
  }

  state(): { state: WorkerState; failures: number; lastError?: string } {
    const state: WorkerState = this.stopping
      ? 'stopped'
      : this.failures > 0
        ? 'backing-off'
        : this.loop
          ? 'draining'
          : 'idle';
    return {
      state,
      failures: this.failures,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** One cron tick: drain until the next tick is due. */
  tick(): Promise<void> {
    const next = this.task?.getNextRun()?.getTime() ?? this.now() + 1_000;
    this.deadline = Math.max(this.deadline, next);
    if (!this.loop && !this.stopping) {
      this.loop = this.drainUntilDeadline().finally(() => {
        this.loop = undefined;
      });
    }
    return this.loop ?? Promise.resolve();
  }

  /** Stops taking batches; the batch in hand is finished and settled first. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.task?.stop();
    for (const wake of this.wakers) wake();
    await this.loop;
  }

  /**
   * Takes one batch from every coupon that has work. Returns how many requests
   * were settled; throws when a store is unavailable or a batch could not be
   * committed, so the loop backs off.
   */
  async drainOnce(): Promise<number> {
    return (await this.pass()).settled;
  }

  /** One pass over the active coupons; `full` when some batch came back full (more is waiting). */
  private async pass(): Promise<{ settled: number; full: boolean }> {
    const { batchSize, leaseMs } = this.deps.settings;
    let settled = 0;
    let full = false;
    this.deps.metrics?.workerTick(this.now());
    for (const couponId of await this.deps.queue.activeCoupons()) {
      if (this.stopping) break;
      const started = performance.now();
      const report = await this.deps.processNextBatch.execute(couponId, batchSize, leaseMs);
      if (!report) continue;
      this.deps.metrics?.batch(report.size, (performance.now() - started) / 1000);
      if (report.settlement === 'compensated' || report.settlement === 'leased') {
        throw new BatchNotCommitted(report);
      }
      this.logBatch(report, performance.now() - started);
      settled += report.size;
      if (report.size >= batchSize) full = true;
    }
    return { settled, full };
  }

  /** Restores lost gates and settles expired leases; run by the loop about once a second. */
  async maintain(): Promise<void> {
    const restored = await this.deps.restoreGates.execute();
    if (restored > 0)
      this.deps.logger.info('coupon gates loaded from PostgreSQL', { coupons: restored });
    const retired = await this.deps.queue.retireFinished();
    if (retired.length > 0) {
      this.deps.logger.info("finished coupons left the worker's rounds", { coupons: retired });
    }
    const now = this.now();
    if (now >= this.nextReactivation) {
      this.nextReactivation = now + REACTIVATE_EVERY_MS;
      const reactivated = await this.deps.reactivate.execute();
      if (reactivated.length > 0) {
        this.deps.logger.warn("live coupons were missing from the worker's rounds: put back", {
          coupons: reactivated,
        });
      }
    }
    const coupons = await this.deps.queue.activeCoupons();
    for (const report of await this.deps.recover.execute(coupons, this.deps.settings.leaseMs)) {
      this.deps.logger.warn('recovered an expired batch', {
        couponId: report.couponId,
        batchId: report.batchId,
        size: report.size,
        settlement: report.settlement,
      });
    }
  }

  private async drainUntilDeadline(): Promise<void> {
    const lanes = Math.max(1, this.deps.settings.lanes ?? 1);
    await Promise.all(Array.from({ length: lanes }, () => this.lane()));
  }

  private async lane(): Promise<void> {
    while (!this.stopping && this.now() < this.deadline) {
      const now = this.now();
      if (now < this.retryAt) {
        await this.sleep(Math.min(this.retryAt, this.deadline) - now);
        continue;
      }
      let pass: { settled: number; full: boolean };
      const seq = this.failureSeq;
      try {
        if (now >= this.nextMaintenance) {
          // Set before the first await: one lane maintains, the others go on draining.
          this.nextMaintenance = now + MAINTENANCE_EVERY_MS;
          await this.maintain();
        }
        pass = await this.pass();
        if (seq === this.failureSeq) this.recovered();
      } catch (err) {
        this.failed(err);
        continue;
      }
      // Partial batches mean the queues are (nearly) empty: wait an interval and let requests
      // gather, rather than paying a transaction's fixed cost for every handful that arrives.
      if (!pass.full) {
        await this.sleep(Math.min(this.deps.settings.batchIntervalMs, this.deadline - this.now()));
      }
    }
  }

  private failed(err: unknown): void {
    const now = this.now();
    this.failures += 1;
    this.failureSeq += 1;
    if (this.failures === 1) this.failingSince = now;
    const backoff = Math.min(BACKOFF_FIRST_MS * 2 ** (this.failures - 1), BACKOFF_MAX_MS);
    this.retryAt = now + backoff;
    // A failure inside a batch names the batch on its line; what failed is its cause.
    const batch = err instanceof BatchFailedError ? err : undefined;
    const cause = batch ? batch.cause : err;
    const batchIds = batch ? { couponId: batch.couponId, batchId: batch.batchId } : {};
    const expected =
      cause instanceof BatchNotCommitted || cause instanceof DependencyUnavailableError;
    this.lastError = describe(cause);
    if (!expected) {
      // Not an outage we know: a bug. Always logged, with its stack.
      this.deps.logger.error('drain failed', {
        ...batchIds,
        error: String((cause as Error)?.stack ?? cause),
        retryInMs: backoff,
      });
      return;
    }
    if (now - this.lastFailureLog < FAILURE_LOG_EVERY_MS) {
      this.suppressed += 1;
      return;
    }
    this.deps.logger.warn('drain backing off', {
      error: this.lastError,
      failures: this.failures,
      suppressed: this.suppressed,
      retryInMs: backoff,
      ...batchIds,
      ...(cause instanceof BatchNotCommitted ? batchFields(cause.report) : {}),
    });
    this.lastFailureLog = now;
    this.suppressed = 0;
  }

  private recovered(): void {
    if (this.failures === 0) return;
    this.deps.logger.info('drain resumed', {
      failures: this.failures,
      failingForMs: this.now() - this.failingSince,
    });
    this.failures = 0;
    this.retryAt = 0;
    this.lastFailureLog = Number.NEGATIVE_INFINITY;
    this.suppressed = 0;
    this.lastError = undefined;
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  private logBatch(report: BatchReport, durationMs: number): void {
    const line = { ...batchFields(report), durationMs: Math.round(durationMs * 10) / 10 };
    if (report.settlement === 'committed') this.deps.logger.info('batch', line);
    else this.deps.logger.warn('batch lost with Redis data', line);
  }
}

function batchFields(report: BatchReport) {
  return {
    couponId: report.couponId,
    batchId: report.batchId,
    size: report.size,
    issued: report.outcomes.ISSUED,
    soldOut: report.outcomes.SOLD_OUT,
    alreadyIssued: report.outcomes.ALREADY_ISSUED,
    eventClosed: report.outcomes.EVENT_CLOSED,
    corrections: report.corrections,
    settlement: report.settlement,
  };
}

function describe(err: unknown): string {
  if (err instanceof BatchNotCommitted) {
    const detail = rootMessage(err.report.error);
    return `batch ${err.report.settlement}${detail ? `: ${detail}` : ''}`;
  }
  if (err instanceof DependencyUnavailableError) {
    const detail = rootMessage(err.cause);
    return `${err.message}${detail ? ` (${detail})` : ''}`;
  }
  return String((err as Error)?.message ?? err);
}

/** The innermost cause's message: the driver's reason, not its wrappers ("Failed query: …"). */
function rootMessage(err: unknown): string | undefined {
  let current = err as { message?: string; cause?: unknown } | undefined;
  for (let depth = 0; current?.cause !== undefined && depth < 10; depth += 1) {
    current = current.cause as { message?: string; cause?: unknown };
  }
  return current?.message;
}

export class BatchNotCommitted extends Error {
  constructor(readonly report: BatchReport) {
    super(`batch ${report.batchId} ended ${report.settlement}`);
  }
}
