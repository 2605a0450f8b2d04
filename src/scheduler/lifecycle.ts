import { isClosedOrSoldOut } from '../domain/coupon.js';
import type { CouponRepository, EventScheduler, Logger } from '../domain/ports.js';
import type { CloseEvent } from '../domain/use-cases/close-event.js';
import type { OpenEvent } from '../domain/use-cases/open-event.js';
import type { ReconcileEvents } from '../domain/use-cases/reconcile-events.js';

export type LifecycleJobName = 'open' | 'close' | 'reconcile';

/** The job queue as the lifecycle sees it (BullMQ in src/infra/jobs). */
export interface LifecycleJobQueue extends EventScheduler {
  scheduleReconcile(everyMs: number): Promise<void>;
  startWorker(
    handle: (name: LifecycleJobName, data: { readonly couponId?: number }) => Promise<unknown>,
  ): Promise<void>;
  close(): Promise<void>;
}

const RETRY_START_MS = 5_000;

/**
 * The event lifecycle in the worker role: runs the open, close and reconcile
 * jobs, and on start makes sure every event not finished has its jobs,
 * PostgreSQL being the source of truth (a Redis that lost them gets them
 * back). Until that succeeds (Redis or PostgreSQL away) it tries again every
 * few seconds.
 */
export class LifecycleJobs {
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly deps: {
      jobs: LifecycleJobQueue;
      coupons: CouponRepository;
      open: OpenEvent;
      close: CloseEvent;
      reconcile: ReconcileEvents;
      logger: Logger;
      reconcileEveryMs: number;
    },
  ) {}

  async start(): Promise<void> {
    try {
      const scheduled = await this.restore();
      await this.deps.jobs.scheduleReconcile(this.deps.reconcileEveryMs);
      if (this.stopped) return;
      await this.deps.jobs.startWorker((name, data) => this.run(name, data));
      this.deps.logger.info('lifecycle jobs started', {
        events: scheduled,
        reconcileEveryMs: this.deps.reconcileEveryMs,
      });
    } catch (err) {
      if (this.stopped) return;
      this.deps.logger.warn('lifecycle jobs could not start yet: retrying', {
        error: (err as Error).message,
        retryInMs: RETRY_START_MS,
      });
      this.retry = setTimeout(() => void this.start(), RETRY_START_MS);
      this.retry.unref();
    }
  }

  /** Schedules the jobs of every event that is not finished; returns how many. */
  async restore(): Promise<number> {
    let scheduled = 0;
    for (const coupon of await this.deps.coupons.unretiredCoupons()) {
      if (isClosedOrSoldOut(coupon)) continue;
      await this.deps.jobs.schedule(coupon);
      scheduled += 1;
    }
    return scheduled;
  }

  run(name: LifecycleJobName, data: { readonly couponId?: number }): Promise<unknown> {
    switch (name) {
      case 'open':
        return this.deps.open.execute(Number(data.couponId));
      case 'close':
        return this.deps.close.execute(Number(data.couponId));
      case 'reconcile':
        return this.deps.reconcile.execute();
      default:
        throw new Error(`unknown lifecycle job ${String(name)}`);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.deps.jobs.close();
  }
}
