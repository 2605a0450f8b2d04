import { isClosedOrSoldOut, keyExpiryAt } from '../coupon.js';
import type { CouponRepository, EventKeys, IssueGate, Logger } from '../ports.js';

export type OpenResult = 'opened' | 'alreadyOpen' | 'notDue' | 'notOpen';

/**
 * The open job, at `startsAt` (or at once for an event without one): loads
 * the gate from PostgreSQL so that the first requests find it ready. Only an
 * event that is open by its record is loaded; a job left over from an older
 * window (or an event closed since) changes nothing. Opening twice changes
 * nothing either: the load keeps a gate that is there, and "event opened" is
 * logged by the one run that marked the gate.
 */
export class OpenEvent {
  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      gate: IssueGate;
      events: EventKeys;
      logger: Logger;
      keyExpiryAfterEndMs: number;
      now?: () => Date;
    },
  ) {}

  async execute(couponId: number): Promise<OpenResult> {
    const now = this.deps.now?.() ?? new Date();
    const coupon = await this.deps.coupons.findById(couponId);
    if (!coupon || isClosedOrSoldOut(coupon)) return 'notOpen';
    if (coupon.endsAt && coupon.endsAt <= now) return 'notOpen';
    if (coupon.startsAt && coupon.startsAt > now) return 'notDue';
    const state = await this.deps.coupons.gateState(couponId);
    if (!state) return 'notOpen';
    await this.deps.gate.load(state);
    await this.deps.events.expireAt(
      couponId,
      keyExpiryAt(coupon, this.deps.keyExpiryAfterEndMs, now),
    );
    if (!(await this.deps.events.markOpened(couponId))) return 'alreadyOpen';
    this.deps.logger.info('event opened', { couponId });
    return 'opened';
  }
}
