import { keyExpiryAt } from '../coupon.js';
import type { CouponRepository, EventKeys, EventScheduler, IssueGate, Logger } from '../ports.js';

export type CloseResult = 'closed' | 'alreadyClosed' | 'notDue';

/**
 * The close job, at `endsAt`: closes the event as the existing close does,
 * PostgreSQL first (`closedAt` = `endsAt`, so the event reads ENDED, not
 * CLOSED), then the Redis gate. From then on the worker rejects whatever is
 * still queued EVENT_CLOSED; a batch already in flight keeps its decisions.
 * A job left over from an older window (the event now ends later) changes
 * nothing, and only the run that closed the event logs "event closed".
 */
export class CloseEvent {
  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      gate: IssueGate;
      events: EventKeys;
      logger: Logger;
      keyExpiryAfterEndMs: number;
      /** Drops the event's jobs once it is closed (the running close job itself stays). */
      scheduler?: EventScheduler;
      now?: () => Date;
    },
  ) {}

  async execute(couponId: number): Promise<CloseResult> {
    const now = this.deps.now?.() ?? new Date();
    const closed = await this.deps.coupons.closeAtEnd(couponId);
    const coupon = closed ?? (await this.deps.coupons.findById(couponId));
    if (!coupon || !coupon.closedAt) return 'notDue';
    // A retired event closed before has no gate left to close: writing one would bring a key back.
    if (!closed && coupon.retiredAt) return 'alreadyClosed';
    // Also when it was closed already: a process that died between the two writes left Redis open.
    await this.deps.gate.close(couponId);
    await this.deps.events.expireAt(
      couponId,
      keyExpiryAt(coupon, this.deps.keyExpiryAfterEndMs, now),
    );
    if (!closed) return 'alreadyClosed';
    await this.deps.scheduler?.schedule(coupon);
    this.deps.logger.info('event closed', { couponId, endsAt: coupon.endsAt?.toISOString() });
    return 'closed';
  }
}
