import { couponStatus, type Coupon } from '../coupon.js';
import { DomainError } from '../errors.js';
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

  async execute(couponId: number, change: CouponChange): Promise<Coupon> {
    const now = this.deps.now?.() ?? new Date();
    const windowChanges = change.startsAt !== undefined || change.endsAt !== undefined;
    let resized = false;
    const coupon = await this.deps.coupons.update(couponId, change, {
      check: (before) => {
        if (windowChanges) checkWindow(before, change, now);
      },
      confirm: async (before, after) => {
        if (change.totalQuantity !== undefined && change.totalQuantity !== before.totalQuantity) {
          const result = await this.deps.control.resize(couponId, change.totalQuantity);
          if (result.kind === 'refused') {
            throw new DomainError(
              'QUANTITY_BELOW_ISSUED',
              `totalQuantity cannot go below ${result.minimum}: ${result.minimum} coupons are issued or being decided`,
              {
                errors: [{ path: 'totalQuantity', message: `must be at least ${result.minimum}` }],
              },
            );
          }
          if (result.kind === 'syncing') {
            throw new DomainError(
              'SYNC_IN_PROGRESS',
              `a sync of coupon ${couponId} is running; change the quantity once it ends`,
            );
          }
          resized = result.kind === 'resized';
        }
        if (windowChanges) {
          try {
            await this.deps.control.setWindow(couponId, after.startsAt, after.endsAt);
          } catch (err) {
            // The stock moved already: put it back, or Redis keeps a total PostgreSQL refused.
            if (resized) await this.undoResize(couponId, before.totalQuantity);
            throw err;
          }
        }
      },
    });
    if (!coupon) throw new DomainError('COUPON_NOT_FOUND', `coupon ${couponId} does not exist`);
    await this.deps.scheduler.schedule(coupon);
    return coupon;
  }

  private async undoResize(couponId: number, total: number): Promise<void> {
    try {
      await this.deps.control.resize(couponId, total);
    } catch (err) {
      this.deps.logger.error('the Redis stock kept a total PostgreSQL did not take; sync it', {
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
