/**
 * The ports the domain needs. Adapters in src/infra implement them over Redis
 * and PostgreSQL; unit tests replace them with sinon fakes.
 */
import type { Coupon, CouponGateState, NewCoupon } from './coupon.js';
import type { IssueRequestView, Outcome, RequestRef } from './issue-request.js';

export type AcceptResult =
  | { readonly kind: 'accepted'; readonly arrival: string; readonly nonce: string }
  | { readonly kind: 'alreadyPending'; readonly arrival: string; readonly nonce: string }
  | { readonly kind: 'rejected'; readonly code: 'ALREADY_ISSUED' | 'SOLD_OUT' | 'EVENT_NOT_OPEN' }
  | { readonly kind: 'notLoaded' };

/** The fast gate in front of the queue (Redis). */
export interface IssueGate {
  /** Admits one request into the coupon's queue, or says why not, atomically. */
  accept(couponId: number, userId: string, nonce: string): Promise<AcceptResult>;
  /** Writes the coupon's gate state unless it is already there. */
  load(state: CouponGateState): Promise<void>;
  /** Stops admitting requests; the worker rejects those still waiting with EVENT_CLOSED. */
  close(couponId: number): Promise<void>;
  /** A request still waiting in the queue or in flight, or null. */
  pending(ref: RequestRef): Promise<{ userId: string; queuePosition: number } | null>;
}

export interface BatchItem {
  readonly userId: string;
  /** Arrival score (microseconds); the request's place in the queue. */
  readonly arrival: string;
  readonly nonce: string;
  readonly outcome: Outcome;
}

/** A batch taken from the queue and decided in Redis, held there under a lease. */
export interface DecidedBatch {
  readonly batchId: string;
  readonly couponId: number;
  readonly decidedAt: Date;
  readonly items: readonly BatchItem[];
}

/** A decision PostgreSQL overruled (for example a user it already holds as issued). */
export interface Correction {
  readonly userId: string;
  readonly from: Outcome;
  readonly to: Outcome;
}

/** The queue and its in-flight batches (Redis). */
export interface IssueQueue {
  /** Coupons that may have queued or in-flight work. */
  activeCoupons(): Promise<number[]>;
  /** Pops up to `size` requests in arrival order, decides them and leases the batch. */
  take(
    couponId: number,
    size: number,
    leaseMs: number,
    batchId: string,
  ): Promise<DecidedBatch | null>;
  /** The database holds the batch: forget it, applying any corrections. False if it was already settled. */
  acknowledge(batch: DecidedBatch, corrections: readonly Correction[]): Promise<boolean>;
  /** The database does not hold the batch: undo its decisions and re-queue it in place. */
  compensate(batch: DecidedBatch): Promise<boolean>;
}

export interface RecordedOutcome {
  readonly outcome: Outcome;
  readonly issueId: number | null;
}

export type CommitResult =
  | { readonly kind: 'committed'; readonly outcomes: ReadonlyMap<string, RecordedOutcome> }
  | { readonly kind: 'abandoned' };

/** The commit was rolled back for certain: nothing of the batch is in the database. */
export class BatchNotWrittenError extends Error {
  constructor(cause: unknown) {
    super('the batch transaction was rolled back');
    this.name = 'BatchNotWrittenError';
    this.cause = cause;
  }
}

/** The connection failed during COMMIT: the database may or may not hold the batch. */
export class BatchOutcomeUnknownError extends Error {
  constructor(cause: unknown) {
    super('the batch commit outcome is unknown');
    this.name = 'BatchOutcomeUnknownError';
    this.cause = cause;
  }
}

/** PostgreSQL: the source of truth for what was issued and how every request ended. */
export interface IssueLedger {
  /** Records a decided batch in one transaction; idempotent per batch and per request. */
  commit(batch: DecidedBatch): Promise<CommitResult>;
  /**
   * Settles a batch whose commit outcome is unknown: if it was committed, says
   * what was recorded; otherwise fences it off so that it can never commit.
   */
  settle(batch: DecidedBatch): Promise<CommitResult>;
  findRequest(requestId: string): Promise<IssueRequestView | null>;
}

export interface CouponRepository {
  create(input: NewCoupon): Promise<Coupon>;
  findById(id: number): Promise<Coupon | null>;
  /** Marks the event closed (idempotent); null when the coupon does not exist. */
  close(id: number): Promise<Coupon | null>;
  /** Everything needed to rebuild the Redis gate from the database. */
  gateState(id: number): Promise<CouponGateState | null>;
}

export interface IdGenerator {
  nonce(): string;
  batchId(): string;
}

export interface Logger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}
