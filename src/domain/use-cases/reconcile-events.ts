import { isClosedOrSoldOut, keyExpiryAt } from '../coupon.js';
import type {
  CouponRepository,
  EventKeys,
  EventScheduler,
  IssueGate,
  IssueQueue,
  Logger,
} from '../ports.js';
import type { CheckConsistency } from './check-consistency.js';
import type { CloseEvent } from './close-event.js';
import type { RetireEvent } from './retire-event.js';

export interface ReconcileReport {
  readonly checked: number;
  readonly drifted: number[];
  readonly loaded: number[];
  readonly reactivated: number[];
  readonly retired: number[];
}

/**
 * The reconcile job (every RECONCILE_EVERY_MS): every event not retired yet
 * is checked against PostgreSQL. Drift is logged with its details; what is
 * safe to heal is healed:
 * - its jobs are scheduled again (adding a job that exists changes nothing),
 *   so a Redis that lost them gets them back within a run;
 * - an open event whose gate is not loaded gets it loaded, as its first
 *   request would have;
 * - a live event missing from the worker's rounds is put back;
 * - an event past its end is closed (its close job may have failed for good);
 * - every key gets its expiry (keys created since the last run included);
 * - a finished event with nothing left to decide is retired.
 * Stock or issued-set drift is only reported: healing it is a sync, which
 * holds the coupon's draining while it runs and overrules Redis with
 * PostgreSQL; the operator decides when (`POST /coupons/:id/sync`).
 */
export class ReconcileEvents {
  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      check: CheckConsistency;
      gate: IssueGate;
      queue: IssueQueue;
      scheduler: EventScheduler;
      events: EventKeys;
      retire: RetireEvent;
      close: CloseEvent;
      logger: Logger;
      keyExpiryAfterEndMs: number;
      now?: () => Date;
    },
  ) {}

  async execute(): Promise<ReconcileReport> {
    const now = this.deps.now?.() ?? new Date();
    const drifted: number[] = [];
    const loaded: number[] = [];
    const retired: number[] = [];
    const live: number[] = [];
    const coupons = await this.deps.coupons.unretiredCoupons();
    for (const coupon of coupons) {
      const expiry = keyExpiryAt(coupon, this.deps.keyExpiryAfterEndMs, now);
      if (isClosedOrSoldOut(coupon)) {
        if ((await this.deps.retire.execute(coupon.id)) === 'retired') retired.push(coupon.id);
        else await this.deps.events.expireAt(coupon.id, expiry);
        continue;
      }
      if (coupon.retiredAt) {
        // Retired, then its quantity grew or it was reopened: it keeps keys again until it ends.
        await this.deps.coupons.markRetired(coupon.id, false);
        this.deps.logger.info('event live again after its retirement', { couponId: coupon.id });
      }
      if (coupon.endsAt && coupon.endsAt <= now) {
        await this.deps.close.execute(coupon.id);
        continue;
      }
      await this.deps.scheduler.schedule(coupon);
      const report = await this.deps.check.execute(coupon.id);
      const open = !coupon.startsAt || coupon.startsAt <= now;
      if (!report.redis.loaded) {
        // Not loaded before it opens is normal: the open job (or a first request) loads it.
        if (!open) continue;
        const state = await this.deps.coupons.gateState(coupon.id);
        if (state) await this.deps.gate.load(state);
        loaded.push(coupon.id);
        this.deps.logger.warn('reconcile: the gate of an open event was not loaded: loaded it', {
          couponId: coupon.id,
        });
      } else if (!report.consistent) {
        drifted.push(coupon.id);
        this.deps.logger.warn('reconcile: Redis and PostgreSQL differ', {
          couponId: coupon.id,
          drift: report.drift,
          redis: report.redis,
          postgres: report.postgres,
        });
      }
      await this.deps.events.expireAt(coupon.id, expiry);
      live.push(coupon.id);
    }
    const reactivated = live.length > 0 ? await this.deps.queue.reactivate(live) : [];
    if (reactivated.length > 0) {
      this.deps.logger.warn(
        "reconcile: live events were missing from the worker's rounds: put back",
        {
          coupons: reactivated,
        },
      );
    }
    return { checked: coupons.length, drifted, loaded, reactivated, retired };
  }
}
