import type { CouponGateState } from '../coupon.js';
import { DomainError } from '../errors.js';
import { gateDrift, type Drift } from '../gate-drift.js';
import type { CouponRepository, GateMaintenance, IssueGate } from '../ports.js';
import type { RecoverExpiredBatches } from './recover-expired-batches.js';

export interface SyncReport {
  readonly couponId: number;
  /** What differed before the sync; empty when Redis already agreed. */
  readonly differed: readonly Drift[];
  readonly before: { readonly stock: number | null; readonly issuedUsers: number | null };
  readonly after: { readonly stock: number; readonly issuedUsers: number };
}

const POLL_MS = 25;

/**
 * Rebuilds a coupon's Redis gate (stock, issued set, closed flag) from
 * PostgreSQL, safely while requests keep arriving: draining of the coupon
 * pauses, batches in flight are settled (by their workers, or recovered once
 * their lease expires), PostgreSQL is read, the gate is swapped in one script
 * and draining resumes. The queue keeps every waiting request in its place.
 */
export class SyncCoupon {
  private readonly running = new Map<number, Promise<SyncReport>>();

  constructor(
    private readonly deps: {
      coupons: CouponRepository;
      gate: IssueGate;
      maintenance: GateMaintenance;
      recover: RecoverExpiredBatches;
      leaseMs: number;
      nowMs?: () => number;
    },
  ) {}

  /** One sync per coupon at a time in this process; concurrent callers share it. */
  execute(couponId: number): Promise<SyncReport> {
    let run = this.running.get(couponId);
    if (!run) {
      run = this.run(couponId).finally(() => this.running.delete(couponId));
      this.running.set(couponId, run);
    }
    return run;
  }

  private async run(couponId: number): Promise<SyncReport> {
    const now = this.deps.nowMs ?? Date.now;
    const initial = await this.deps.coupons.gateState(couponId);
    if (!initial) throw new DomainError('COUPON_NOT_FOUND', `coupon ${couponId} does not exist`);
    const before = await this.deps.maintenance.inspect(couponId);
    if (!before) {
      await this.deps.gate.load(initial);
      return report(couponId, gateDrift(null, initial), null, initial);
    }

    await this.deps.maintenance.pause(couponId);
    let state: CouponGateState | null = null;
    try {
      const deadline = now() + this.deps.leaseMs + 5_000;
      for (;;) {
        const current = await this.deps.maintenance.inspect(couponId);
        if (current && current.inflightBatches === 0) {
          // Paused and nothing in flight: PostgreSQL cannot change for this coupon until we resume.
          state = await this.deps.coupons.gateState(couponId);
          if (!state)
            throw new DomainError('COUPON_NOT_FOUND', `coupon ${couponId} does not exist`);
          if (await this.deps.maintenance.replace(state)) break;
        } else if (current && current.expiredLeases > 0) {
          await this.deps.recover.execute([couponId], this.deps.leaseMs);
        }
        if (now() > deadline) {
          throw new DomainError(
            'BATCH_IN_FLIGHT',
            `a batch of coupon ${couponId} is still in flight; try again once it settles`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } catch (err) {
      await this.deps.maintenance.resume(couponId);
      throw err;
    }
    return report(couponId, gateDrift(before, state), before, state);
  }
}

function report(
  couponId: number,
  differed: Drift[],
  before: { stock: number; issuedUserIds: readonly string[] } | null,
  after: CouponGateState,
): SyncReport {
  return {
    couponId,
    // A pause is the sync's own doing, not a difference it found.
    differed: differed.filter((d) => d.code !== 'DRAINING_PAUSED'),
    before: { stock: before?.stock ?? null, issuedUsers: before?.issuedUserIds.length ?? null },
    after: { stock: after.remaining, issuedUsers: after.issuedUserIds.length },
  };
}
