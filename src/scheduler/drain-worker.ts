import cron, { type ScheduledTask } from 'node-cron';
import { DependencyUnavailableError } from '../domain/errors.js';
import type { IssueQueue, Logger } from '../domain/ports.js';
import type { BatchReport, ProcessNextBatch } from '../domain/use-cases/process-next-batch.js';

export interface DrainSettings {
  readonly batchSize: number;
  readonly batchCron: string;
  readonly batchIntervalMs: number;
  readonly leaseMs: number;
}

/**
 * The batch worker. node-cron wakes it (BATCH_CRON, every second by default);
 * within a tick it takes batch after batch while any queue has work and polls
 * every BATCH_INTERVAL_MS until the next tick, so a request waits far less
 * than a tick and throughput is not one batch per tick. A tick that arrives
 * while the loop runs only extends it: ticks never overlap in one process.
 * Several processes may drain at once: each batch is taken atomically in
 * Redis, so no request is decided twice.
 */
export class DrainWorker {
  private task: ScheduledTask | undefined;
  private loop: Promise<void> | undefined;
  private deadline = 0;
  private stopping = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly deps: {
      queue: IssueQueue;
      processNextBatch: ProcessNextBatch;
      logger: Logger;
      settings: DrainSettings;
    },
  ) {}

  start(): void {
    this.task = cron.schedule(this.deps.settings.batchCron, () => this.tick(), { name: 'drain' });
  }

  /** One cron tick: drain until the next tick is due. */
  tick(): Promise<void> {
    const next = this.task?.getNextRun()?.getTime() ?? Date.now() + 1_000;
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
    this.wake?.();
    await this.loop;
  }

  /**
   * Takes one batch from every coupon that has work. Returns how many requests
   * were settled; throws when a store is unavailable or a batch could not be
   * committed, so the loop backs off until the next tick.
   */
  async drainOnce(): Promise<number> {
    const { batchSize, leaseMs } = this.deps.settings;
    let settled = 0;
    for (const couponId of await this.deps.queue.activeCoupons()) {
      if (this.stopping) break;
      const started = performance.now();
      const report = await this.deps.processNextBatch.execute(couponId, batchSize, leaseMs);
      if (!report) continue;
      this.logBatch(report, performance.now() - started);
      if (report.settlement !== 'committed') throw new BatchNotCommitted(report);
      settled += report.size;
    }
    return settled;
  }

  private async drainUntilDeadline(): Promise<void> {
    while (!this.stopping && Date.now() < this.deadline) {
      let settled: number;
      try {
        settled = await this.drainOnce();
      } catch (err) {
        if (!(err instanceof BatchNotCommitted)) {
          const unavailable = err instanceof DependencyUnavailableError;
          this.deps.logger[unavailable ? 'warn' : 'error']('drain paused until the next tick', {
            error: unavailable ? err.message : String((err as Error).stack ?? err),
          });
        }
        return;
      }
      if (settled === 0)
        await this.sleep(Math.min(this.deps.settings.batchIntervalMs, this.deadline - Date.now()));
    }
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private logBatch(report: BatchReport, durationMs: number): void {
    const line = {
      couponId: report.couponId,
      batchId: report.batchId,
      size: report.size,
      issued: report.outcomes.ISSUED,
      soldOut: report.outcomes.SOLD_OUT,
      alreadyIssued: report.outcomes.ALREADY_ISSUED,
      eventClosed: report.outcomes.EVENT_CLOSED,
      corrections: report.corrections,
      settlement: report.settlement,
      durationMs: Math.round(durationMs * 10) / 10,
    };
    if (report.settlement === 'committed') {
      this.deps.logger.info('batch', line);
    } else {
      this.deps.logger.warn('batch not committed', { ...line, error: String(report.error) });
    }
  }
}

class BatchNotCommitted extends Error {
  constructor(readonly report: BatchReport) {
    super(`batch ${report.batchId} ended ${report.settlement}`);
  }
}
