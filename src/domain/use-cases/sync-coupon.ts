import type { CouponGateState } from '../coupon.js';
import { couponNotFound, DomainError } from '../errors.js';
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
/** How long past the lease a sync waits for batches in flight to settle. */
const SETTLE_EXTRA_MS = 5_000;
/** Room in the lock, beyond that wait, for reading PostgreSQL and swapping the gate. */
const LOCK_EXTRA_MS = 25_000;

/**
 * Rebuilds a coupon's Redis gate (stock, issued set, closed flag) from
 * PostgreSQL, safely while requests keep arriving. A sync first takes the
 * coupon's lock in Redis, which every process shares: syncs of one coupon
 * never overlap, and no batch of the coupon is taken while the lock is held.
 * Batches in flight are then settled (by their workers, or recovered once
 * their lease expires), PostgreSQL is read, and the gate is swapped in one
 * script that also releases the lock, so draining resumes with the new gate.
 * The swap happens only while the sync still holds the lock: a sync that
 * outlived its lock (draining may have resumed, another sync may have run)
 * holds a snapshot that may be stale, and applies nothing. A sync that dies
 * pauses the coupon only until its lock expires. The queue keeps every
 * waiting request in its place.
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

  /** Longer than a sync can take while its lock is held, waiting for batches included. */
  private get lockMs(): number {
    return this.deps.leaseMs + SETTLE_EXTRA_MS + LOCK_EXTRA_MS;
  }

  private async run(couponId: number): Promise<SyncReport> {
    const token = await this.lock(couponId);
    try {
      return await this.locked(couponId, token);
    } finally {
      // Best effort: a lock that cannot be released now expires on its own.
      await this.deps.maintenance.unlockSync(couponId, token).catch(() => undefined);
    }
  }

  /** Waits for a sync of the coupon running in another process to end (or its lock to expire). */
  private async lock(couponId: number): Promise<string> {
    const now = this.deps.nowMs ?? Date.now;
    const deadline = now() + this.lockMs;
    for (;;) {
      const token = await this.deps.maintenance.lockSync(couponId, this.lockMs);
      if (token) return token;
      if (now() > deadline) {
        throw new DomainError(
          'SYNC_IN_PROGRESS',
          `another sync of coupon ${couponId} is still running; try again once it ends`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  private async locked(couponId: number, token: string): Promise<SyncReport> {
    const now = this.deps.nowMs ?? Date.now;
    const before = await this.deps.maintenance.inspect(couponId);
    if (!before) {
      const initial = await this.gateState(couponId);
      await this.deps.gate.load(initial);
      return report(couponId, gateDrift(null, initial), null, initial);
    }

    const deadline = now() + this.deps.leaseMs + SETTLE_EXTRA_MS;
    for (;;) {
      const current = await this.deps.maintenance.inspect(couponId);
      if (!current) {
        // Redis lost the coupon (and this lock) meanwhile: load it, unless a request already did.
        const state = await this.gateState(couponId);
        await this.deps.gate.load(state);
        return report(couponId, gateDrift(before, state), before, state);
      }
      if (current.inflightBatches === 0) {
        // Locked and nothing in flight: PostgreSQL cannot change for this coupon until we unlock.
        const state = await this.gateState(couponId);
        const applied = await this.deps.maintenance.replace(state, token);
        if (applied === 'replaced')
          return report(couponId, gateDrift(before, state), before, state);
        if (applied === 'lockLost') {
          throw new DomainError(
            'SYNC_LOCK_LOST',
            `the sync of coupon ${couponId} outlived its lock and applied nothing; try again`,
          );
        }
      } else if (current.expiredLeases > 0) {
        await this.deps.recover.execute([couponId], this.deps.leaseMs);
      }
      if (now() > deadline) {
        throw new DomainError(
          'BATCH_IN_FLIGHT',
          `a batch of coupon ${couponId} is still in flight; try again once it settles`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  private async gateState(couponId: number): Promise<CouponGateState> {
    const state = await this.deps.coupons.gateState(couponId);
    if (!state) throw couponNotFound(couponId);
    return state;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function report(
  couponId: number,
  differed: Drift[],
  before: { stock: number; issuedUserIds: readonly string[] } | null,
  after: CouponGateState,
): SyncReport {
  return {
    couponId,
    // The pause is the sync's own lock, not a difference it found.
    differed: differed.filter((d) => d.code !== 'DRAINING_PAUSED'),
    before: { stock: before?.stock ?? null, issuedUsers: before?.issuedUserIds.length ?? null },
    after: { stock: after.remaining, issuedUsers: after.issuedUserIds.length },
  };
}
