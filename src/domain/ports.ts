/**
 * The ports the domain needs. Adapters in src/infra implement them over Redis
 * and PostgreSQL; unit tests replace them with sinon fakes.
 */
import type { Coupon, CouponGateState, CouponStatus, NewCoupon } from './coupon.js';
import type { IssueRequestView, Outcome, RequestRef } from './issue-request.js';

/**
 * A count an issue request is charged against as it is admitted (the API's
 * rate limits), taken in the same atomic step as the admission.
 */
export interface AdmissionQuota {
  /** Which limit: the API's name for it ('ip', 'accept'). */
  readonly name: string;
  /** Whom it counts: a client address, a user id. */
  readonly subject: string;
  /** Requests admitted per window. */
  readonly points: number;
  readonly windowS: number;
}

/** Where one quota stands after the request was counted. */
export interface QuotaReading {
  readonly consumed: number;
  /** Until the window ends and the count starts again. */
  readonly resetMs: number;
}

/** What one check of a rate limit found. */
export interface LimitState {
  readonly allowed: boolean;
  readonly limit: number;
  readonly windowS: number;
  readonly remaining: number;
  /** Until the window ends and the count starts again. */
  readonly resetMs: number;
}

/**
 * A rate limit (the API's; Redis behind it). The accept script counts its
 * admissions itself (AdmissionQuota); the API checks every other request here.
 */
export interface RateLimiter {
  /** The limit's name: its counters' keys are `<prefix>rl:<name>:<key>`. */
  readonly name: string;
  readonly limit: number;
  readonly windowS: number;
  /** Counts one request of `key`; rejects only for a fault no fallback could take. */
  consume(key: string): Promise<LimitState>;
  /** How long this process refuses `key` without asking Redis; 0 when it does not. */
  blockedMs(key: string): number;
  /** Refuse `key` in this process for `ms`: a count taken elsewhere found it over. */
  block(key: string, ms: number): void;
}

export type AcceptResult = (
  | { readonly kind: 'accepted'; readonly arrival: string; readonly nonce: string }
  | { readonly kind: 'alreadyPending'; readonly arrival: string; readonly nonce: string }
  | {
      readonly kind: 'rejected';
      readonly code: 'ALREADY_ISSUED' | 'SOLD_OUT' | 'EVENT_NOT_OPEN' | 'EVENT_PAUSED';
    }
  | { readonly kind: 'notLoaded' }
  /** Over one of the quotas: counted, nothing else done. */
  | { readonly kind: 'overQuota'; readonly quota: AdmissionQuota }
) & {
  /** One per quota asked for, in order; absent when the request was not counted (not loaded). */
  readonly readings?: readonly QuotaReading[];
};

/** The fast gate in front of the queue (Redis). */
export interface IssueGate {
  /**
   * Admits one request into the coupon's queue, or says why not, atomically; counts it
   * against `quotas` (at most two) in the same step, refusing it when over one.
   */
  accept(
    couponId: number,
    userId: string,
    nonce: string,
    quotas?: readonly AdmissionQuota[],
  ): Promise<AcceptResult>;
  /** Writes the coupon's gate state unless it is already there. */
  load(state: CouponGateState): Promise<void>;
  /** Stops admitting requests; the worker rejects those still waiting with EVENT_CLOSED. */
  close(couponId: number): Promise<void>;
  /** Whether a request is still waiting in the queue or in flight. */
  pending(ref: RequestRef): Promise<PendingLookup>;
}

export type PendingLookup =
  | { readonly kind: 'waiting'; readonly userId: string; readonly queuePosition: number }
  /** `since`: when the coupon's gate was loaded (arrival microseconds), null when it is not loaded. */
  | { readonly kind: 'absent'; readonly since: string | null };

/** What Redis holds for one coupon, for operators comparing it with PostgreSQL. */
export interface GateSnapshot {
  readonly totalQuantity: number;
  readonly stock: number;
  readonly issuedUserIds: readonly string[];
  readonly queued: number;
  readonly waitingRecords: number;
  readonly inflightBatches: number;
  readonly expiredLeases: number;
  /** Users decided ISSUED in batches not yet settled (PostgreSQL may or may not hold them yet). */
  readonly inflightIssuedUserIds: readonly string[];
  /** A sync holds the coupon: no batch is taken until it ends (or its lock expires). */
  readonly paused: boolean;
  readonly closed: boolean;
  /** An operator paused the event (the meta's `paused` flag): nothing is accepted or decided. */
  readonly operatorPaused?: boolean;
}

/** Operator-side access to the gate: inspecting it and rebuilding it from PostgreSQL. */
export interface GateMaintenance {
  inspect(couponId: number): Promise<GateSnapshot | null>;
  /**
   * Takes the coupon's sync lock for `ttlMs`, across every process sharing
   * this Redis: no batch of the coupon is taken while it is held. Returns the
   * lock's token, or null while another sync holds it.
   */
  lockSync(couponId: number, ttlMs: number): Promise<string | null>;
  /** Releases the lock if `token` still holds it. */
  unlockSync(couponId: number, token: string): Promise<void>;
  /**
   * Swaps in PostgreSQL's stock and issued set and releases the lock, in one
   * step, provided `token` still holds the lock and no batch is in flight.
   */
  replace(state: CouponGateState, token: string): Promise<SyncApplied>;
  /**
   * Notes that this Redis is the one the service has been using. Returns false
   * when the marker was missing: Redis is new or lost its data.
   */
  markPresent(): Promise<boolean>;
  /** Identifies the running Redis server; it changes when Redis restarts. */
  serverRunId(): Promise<string>;
}

/**
 * - `replaced`: the gate now holds the snapshot and draining resumed;
 * - `batchInFlight`: nothing changed; settle the batch and try again;
 * - `lockLost`: nothing changed; the lock expired, so the snapshot may be
 *   older than what the gate holds by now.
 */
export type SyncApplied = 'replaced' | 'batchInFlight' | 'lockLost';

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
  /** The gate load the batch was taken under; a different epoch means Redis lost its data since. */
  readonly epoch: string;
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
  /** Coupons with queued requests or batches in flight. */
  activeCoupons(): Promise<number[]>;
  /**
   * Drops from the worker's rounds the coupons that can never have work again
   * (closed or past their end, nothing queued, nothing in flight); returns them.
   */
  retireFinished(): Promise<number[]>;
  /**
   * Puts back in the worker's rounds those of these coupons whose gate is
   * loaded but which are missing from the rounds and not finished; returns them.
   */
  reactivate(couponIds: readonly number[]): Promise<number[]>;
  /** Pops up to `size` requests in arrival order, decides them and leases the batch. */
  take(
    couponId: number,
    size: number,
    leaseMs: number,
    batchId: string,
  ): Promise<DecidedBatch | null>;
  /** The database holds the batch: forget it, applying any corrections. */
  acknowledge(batch: DecidedBatch, corrections: readonly Correction[]): Promise<RedisSettlement>;
  /** The database does not hold the batch: undo its decisions and re-queue it in place. */
  compensate(batch: DecidedBatch): Promise<RedisSettlement>;
  /** Batches whose lease expired, leased anew to the caller for settling. */
  claimExpired(couponId: number, leaseMs: number, limit: number): Promise<DecidedBatch[]>;
}

/**
 * - `settled`: done now;
 * - `alreadySettled`: someone else (a recovering worker) settled it first;
 * - `gateRebuilt`: Redis lost its data since the batch was taken; the gate
 *   must be synced from PostgreSQL.
 */
export type RedisSettlement = 'settled' | 'alreadySettled' | 'gateRebuilt';

export interface RecordedOutcome {
  readonly outcome: Outcome;
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

/**
 * Keeps an event's lifecycle jobs (open at `startsAt`, close at `endsAt`) in
 * line with its record in PostgreSQL. Called after the record changed.
 */
export interface EventScheduler {
  /** Schedules, moves or removes the coupon's jobs to match its window and state; idempotent. */
  schedule(coupon: Coupon): Promise<void>;
}

/** For processes and tests that schedule nothing. */
export const NO_SCHEDULER: EventScheduler = { schedule: async () => undefined };

export interface CouponRepository {
  create(input: NewCoupon): Promise<Coupon>;
  findById(id: number): Promise<Coupon | null>;
  /** Marks the event closed (idempotent); null when the coupon does not exist. */
  close(id: number): Promise<Coupon | null>;
  /**
   * Everything needed to rebuild the Redis gate from the database, read after
   * any batch transaction of the coupon in progress has finished.
   */
  gateState(id: number): Promise<CouponGateState | null>;
  /** Coupons that may still take requests (not closed, not sold out, not long ended). */
  liveCouponIds(): Promise<number[]>;
  /** Newest first (id descending), after the id `afterId` when given. */
  list(query: CouponListQuery): Promise<Coupon[]>;
  /**
   * Changes the coupon under its row lock (which also waits for any batch
   * transaction of the coupon): `check` sees the locked record first and may
   * refuse; `confirm` sees the changed record before the commit. If either
   * throws, nothing is written. Throws QUANTITY_BELOW_ISSUED when the new
   * total is below the issued count. Null when the coupon does not exist.
   */
  update(id: number, change: CouponChange, hooks: CouponUpdateHooks): Promise<Coupon | null>;
  /** Sets (keeping the first time) or clears `pausedAt`; null when the coupon does not exist. */
  setPaused(id: number, paused: boolean): Promise<Coupon | null>;
  /** Moves a future `startsAt` to now (PostgreSQL's clock); null when the coupon does not exist. */
  startNow(id: number): Promise<Coupon | null>;
  /** Figures of the coupon's decided requests, from PostgreSQL. */
  requestFigures(id: number, windowMs: number): Promise<RequestFigures>;
  /**
   * Closes the event because its window ended: `closedAt` becomes `endsAt`,
   * provided `endsAt` has passed and it is not closed yet. Returns the coupon
   * only when this call closed it.
   */
  closeAtEnd(id: number): Promise<Coupon | null>;
  /**
   * Notes that the event's Redis keys were deleted (idempotent: the first time
   * stays), or with `retired` false that it is live again and keeps keys.
   */
  markRetired(id: number, retired?: boolean): Promise<void>;
  /**
   * Every coupon the lifecycle still looks after, oldest first: those whose
   * Redis keys were not retired yet, and those live again since they were.
   */
  unretiredCoupons(): Promise<Coupon[]>;
}

export interface CouponListQuery {
  readonly status: CouponStatus | null;
  readonly limit: number;
  readonly afterId: number | null;
  readonly now: Date;
}

export interface CouponUpdateHooks {
  check(before: Coupon): void;
  confirm(before: Coupon, after: Coupon): Promise<void>;
}

export interface CouponChange {
  readonly name?: string;
  readonly totalQuantity?: number;
  readonly startsAt?: Date | null;
  readonly endsAt?: Date | null;
}

export interface RequestFigures {
  readonly rejected: {
    readonly SOLD_OUT: number;
    readonly ALREADY_ISSUED: number;
    readonly EVENT_CLOSED: number;
  };
  /** Decided requests that arrived within the window. */
  readonly requestedInWindow: number;
  /** Coupons issued within the window. */
  readonly issuedInWindow: number;
}

/** What the gate holds for a loaded coupon, for operators. */
export interface GateFigures {
  readonly stock: number;
  readonly queued: number;
  /** Requests taken into batches not yet settled. */
  readonly inFlight: number;
  readonly paused: boolean;
}

export type ResizeResult =
  | { readonly kind: 'resized'; readonly stock: number }
  | { readonly kind: 'refused'; readonly minimum: number }
  | { readonly kind: 'notLoaded' }
  | { readonly kind: 'syncing' };

/** Operator changes to a coupon's Redis gate, and its live figures. */
export interface EventControl {
  /** Sets the total and moves the stock with it, unless the stock cannot give up a shrink. */
  resize(couponId: number, totalQuantity: number): Promise<ResizeResult>;
  /** Writes the window of a loaded gate; false when the gate is not loaded. */
  setWindow(couponId: number, startsAt: Date | null, endsAt: Date | null): Promise<boolean>;
  /** Writes the pause flag, loaded or not (a load that races it keeps it). */
  setPaused(couponId: number, paused: boolean): Promise<void>;
  /** Figures of those coupons whose gate is loaded, in one round trip. */
  figures(couponIds: readonly number[]): Promise<ReadonlyMap<number, GateFigures>>;
  /** Requests still in Redis (queued or in flight) that arrived within the last `windowMs`. */
  recentArrivals(couponId: number, windowMs: number): Promise<number>;
}

/**
 * The Redis side of an event's life beyond the gate: the open mark, the
 * keys' expiries and their deletion once the event is over.
 */
export interface EventKeys {
  /** Marks the loaded gate opened; true only for the call that marked it. */
  markOpened(couponId: number): Promise<boolean>;
  /** Sets every existing key of the coupon to expire at `at`; null removes their expiry. */
  expireAt(couponId: number, at: Date | null): Promise<void>;
  /**
   * Deletes every key of the coupon and drops it from the worker's rounds, in
   * one step, provided nothing is queued, in flight or being synced.
   */
  retire(couponId: number): Promise<'retired' | 'busy'>;
}

/**
 * Named points in a batch's life where tests can make the process die,
 * freeze or wait. They do nothing unless configured, and cannot be
 * configured in production.
 */
export type FaultPoint = 'after-take' | 'before-commit' | 'after-commit';

export interface FaultPoints {
  /** `batchId`: the batch being worked on there, for the log line. */
  reach(point: FaultPoint, batchId?: string): Promise<void>;
}

export const NO_FAULTS: FaultPoints = { reach: async () => undefined };

/**
 * How the service answered one issue request at accept time: `accepted` (queued),
 * `repeat` (the user's pending request given back), the refusals by reason, and
 * `unavailable` (a store down or the gate not loadable) or `error` (a bug).
 */
export type AcceptOutcome =
  | 'accepted'
  | 'repeat'
  | 'sold_out'
  | 'already_issued'
  | 'not_open'
  | 'paused'
  | 'not_found'
  | 'rate_limited'
  | 'invalid'
  | 'unauthorized'
  | 'unavailable'
  | 'error';

/**
 * What the worker side reports for monitoring (Prometheus in production).
 * Calls are cheap and never fail; NO_METRICS does nothing.
 */
export interface Metrics {
  /** A batch PostgreSQL holds, by final outcome (after its corrections). */
  decided(outcomes: Readonly<Record<Outcome, number>>): void;
  /** A batch undone in Redis and put back in the queue. */
  compensated(): void;
  /** A batch whose lease expired, settled by recovery. */
  recovered(): void;
  /** A batch commit PostgreSQL failed (written or not). */
  commitFailed(): void;
}

export const NO_METRICS: Metrics = {
  decided: () => undefined,
  compensated: () => undefined,
  recovered: () => undefined,
  commitFailed: () => undefined,
};

export interface IdGenerator {
  nonce(): string;
  batchId(): string;
}

export interface Logger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}
