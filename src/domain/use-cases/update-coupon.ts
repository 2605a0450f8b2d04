import { couponStatus, type Coupon } from '../coupon.js';
import { couponNotFound, DomainError } from '../errors.js';
import type {
  CouponChange,
  CouponRepository,
  EventControl,
  EventScheduler,
  Logger,
} from '../ports.js';

/**
 * Edits an event's name, window and total quantity.
 *
 * The window follows the rules of creation (`endsAt` after `startsAt` and in
 * the future) and cannot change once the event is closed or ended: its close
 * has run or is due, and moving the window would reopen it behind the
 * operator's back. The quantity may grow at any time and shrink down to what
 * is issued or decided ISSUED in a batch not yet settled, never below.
 *
 * PostgreSQL's row is changed under its lock, the Redis gate is changed while
 * the lock is held, and only then is the change committed: Redis refusing the
 * shrink (or failing) rolls the change back, and no batch of the coupon
 * commits in between.
 */
export class UpdateCoupon {
  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      control: EventControl;
      scheduler: EventScheduler;
      logger: Logger;
      now?: () => Date;
    },
  ) {}

  /** `logger`: where this call's lines go (an HTTP request's names the request). */
  async execute(
    couponId: number,
    change: CouponChange,
    logger: Logger = this.deps.logger,
  ): Promise<Coupon> {
    const now = this.deps.now?.() ?? new Date();
    const windowChanges = change.startsAt !== undefined || change.endsAt !== undefined;
    let resized = false;
    let coupon: Coupon | null;
    try {
      coupon = await this.deps.coupons.update(couponId, change, {
        check: (before) => {
          if (windowChanges) checkWindow(before, change, now);
        },
        confirm: async (before, after) => {
          if (change.totalQuantity !== undefined && change.totalQuantity !== before.totalQuantity) {
            resized = await this.resize(couponId, change.totalQuantity);
          }
          if (windowChanges) {
            await this.deps.control.setWindow(couponId, after.startsAt, after.endsAt);
          }
        },
      });
    } catch (err) {
      // Redis took the new total but the change failed afterwards (the window write or the
      // commit): Redis must not keep a total PostgreSQL may not hold.
      if (resized) await this.realign(couponId, logger);
      throw err;
    }
    if (!coupon) throw couponNotFound(couponId);
    await this.deps.scheduler.schedule(coupon);
    return coupon;
  }

  /** True when the loaded gate took the new total; false when it is not loaded. */
  private async resize(couponId: number, totalQuantity: number): Promise<boolean> {
    const result = await this.deps.control.resize(couponId, totalQuantity);
    switch (result.kind) {
      case 'resized':
        return true;
      case 'notLoaded':
        return false;
      case 'refused':
        throw new DomainError(
          'QUANTITY_BELOW_ISSUED',
          `totalQuantity cannot go below ${result.minimum}: ${result.minimum} coupons are issued or being decided`,
          { errors: [{ path: 'totalQuantity', message: `must be at least ${result.minimum}` }] },
        );
      case 'syncing':
        throw new DomainError(
          'SYNC_IN_PROGRESS',
          `a sync of coupon ${couponId} is running; change the quantity once it ends`,
        );
    }
  }

  /** Puts PostgreSQL's total back into the gate, whatever the failed change left there. */
  private async realign(couponId: number, logger: Logger): Promise<void> {
    try {
      const current = await this.deps.coupons.findById(couponId);
      const result = current && (await this.deps.control.resize(couponId, current.totalQuantity));
      if (result && result.kind !== 'resized' && result.kind !== 'notLoaded') {
        throw new Error(`the gate answered ${result.kind}`);
      }
    } catch (err) {
      logger.error('the Redis total may differ from PostgreSQL; sync the coupon', {
        couponId,
        error: String(err),
      });
    }
  }
}

function checkWindow(before: Coupon, change: CouponChange, now: Date): void {
  const status = couponStatus(before, now);
  const after = {
    startsAt: change.startsAt === undefined ? before.startsAt : change.startsAt,
    endsAt: change.endsAt === undefined ? before.endsAt : change.endsAt,
  };
  if (status === 'CLOSED' || status === 'ENDED') {
    throw new DomainError(
      'EVENT_FINISHED',
      `coupon ${before.id} is ${status}: its window can no longer change`,
    );
  }
  if (after.startsAt && after.endsAt && after.endsAt <= after.startsAt) {
    throw new DomainError('VALIDATION_FAILED', 'endsAt must be after startsAt', {
      errors: [{ path: 'endsAt', message: 'must be after startsAt' }],
    });
  }
  if (after.endsAt && after.endsAt <= now) {
    throw new DomainError('VALIDATION_FAILED', 'endsAt must be in the future', {
      errors: [{ path: 'endsAt', message: 'must be in the future' }],
    });
  }
}
