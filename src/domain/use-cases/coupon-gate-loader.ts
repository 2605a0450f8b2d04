import { isClosedOrSoldOut } from '../coupon.js';
import { couponNotFound, DomainError } from '../errors.js';
import type { CouponRepository, IssueGate } from '../ports.js';

const UNKNOWN_TTL_MS = 5_000;
const UNKNOWN_MAX_ENTRIES = 10_000;

/**
 * Loads a coupon's Redis gate from PostgreSQL when Redis does not know it
 * (first use after a restart, or a lost Redis), unless the event is over: a
 * closed or sold-out event is refused EVENT_NOT_OPEN or SOLD_OUT from
 * PostgreSQL (remembered for a few seconds, like unknown ids). Concurrent requests for the
 * same coupon share one load, and unknown ids are remembered briefly so that a
 * flood of requests for a missing coupon does not become a flood of queries.
 */
export class CouponGateLoader {
  private readonly loading = new Map<number, Promise<void>>();
  private readonly unknownUntil = new Map<number, number>();
  private readonly finishedUntil = new Map<number, { until: number; code: FinishedCode }>();

  constructor(
    private readonly deps: { coupons: CouponRepository; gate: IssueGate; nowMs?: () => number },
  ) {}

  async ensureLoaded(couponId: number): Promise<void> {
    const now = this.deps.nowMs?.() ?? Date.now();
    const until = this.unknownUntil.get(couponId);
    if (until !== undefined && until > now) throw couponNotFound(couponId);
    const finished = this.finishedUntil.get(couponId);
    if (finished !== undefined && finished.until > now) throw refusal(finished.code);
    let load = this.loading.get(couponId);
    if (!load) {
      load = this.load(couponId, now).finally(() => this.loading.delete(couponId));
      this.loading.set(couponId, load);
    }
    await load;
  }

  private async load(couponId: number, now: number): Promise<void> {
    // The row alone says whether the event is over: the issued users (all of them, for the
    // gate) are read only for an event that gets a gate.
    const coupon = await this.deps.coupons.findById(couponId);
    const state =
      coupon && !isClosedOrSoldOut(coupon) ? await this.deps.coupons.gateState(couponId) : null;
    if (!coupon || (!state && !isClosedOrSoldOut(coupon))) {
      if (this.unknownUntil.size >= UNKNOWN_MAX_ENTRIES) this.unknownUntil.clear();
      this.unknownUntil.set(couponId, now + UNKNOWN_TTL_MS);
      throw couponNotFound(couponId);
    }
    // A closed or sold-out event is decided for good: PostgreSQL answers for it, and a gate
    // loaded now would bring back the keys its retirement deleted. The state is checked too:
    // the event may have finished between the two reads.
    if (!state || state.closed || state.remaining <= 0) {
      const closed = coupon.closedAt !== null || state?.closed === true;
      const code: FinishedCode = closed ? 'EVENT_NOT_OPEN' : 'SOLD_OUT';
      if (this.finishedUntil.size >= UNKNOWN_MAX_ENTRIES) this.finishedUntil.clear();
      this.finishedUntil.set(couponId, { until: now + UNKNOWN_TTL_MS, code });
      throw refusal(code);
    }
    await this.deps.gate.load(state);
  }
}

type FinishedCode = 'EVENT_NOT_OPEN' | 'SOLD_OUT';

/** Whether `ensureLoaded` refused because the event is over (closed or sold out). */
export function isFinishedRefusal(err: unknown): boolean {
  return err instanceof DomainError && (err.code === 'EVENT_NOT_OPEN' || err.code === 'SOLD_OUT');
}

function refusal(code: FinishedCode): DomainError {
  return new DomainError(
    code,
    code === 'SOLD_OUT'
      ? 'every coupon of this event is taken'
      : 'the event is not open for requests',
  );
}
