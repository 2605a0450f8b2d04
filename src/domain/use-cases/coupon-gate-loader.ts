import { DomainError } from '../errors.js';
import type { CouponRepository, IssueGate } from '../ports.js';

const UNKNOWN_TTL_MS = 5_000;
const UNKNOWN_MAX_ENTRIES = 10_000;

/**
 * Loads a coupon's Redis gate from PostgreSQL when Redis does not know it
 * (first use after a restart, or a lost Redis). Concurrent requests for the
 * same coupon share one load, and unknown ids are remembered briefly so that a
 * flood of requests for a missing coupon does not become a flood of queries.
 */
export class CouponGateLoader {
  private readonly loading = new Map<number, Promise<void>>();
  private readonly unknownUntil = new Map<number, number>();

  constructor(
    private readonly deps: { coupons: CouponRepository; gate: IssueGate; nowMs?: () => number },
  ) {}

  async ensureLoaded(couponId: number): Promise<void> {
    const now = this.deps.nowMs?.() ?? Date.now();
    const until = this.unknownUntil.get(couponId);
    if (until !== undefined && until > now) throw notFound(couponId);
    let load = this.loading.get(couponId);
    if (!load) {
      load = this.load(couponId, now).finally(() => this.loading.delete(couponId));
      this.loading.set(couponId, load);
    }
    await load;
  }

  private async load(couponId: number, now: number): Promise<void> {
    const state = await this.deps.coupons.gateState(couponId);
    if (!state) {
      if (this.unknownUntil.size >= UNKNOWN_MAX_ENTRIES) this.unknownUntil.clear();
      this.unknownUntil.set(couponId, now + UNKNOWN_TTL_MS);
      throw notFound(couponId);
    }
    await this.deps.gate.load(state);
  }
}

function notFound(couponId: number): DomainError {
  return new DomainError('COUPON_NOT_FOUND', `coupon ${couponId} does not exist`);
}
