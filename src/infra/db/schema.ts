import { sql, type InferSelectModel } from 'drizzle-orm';
import {
  bigint,
  check,
  customType,
  integer,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * Text compared byte by byte (collation "C"), for the identifiers the batch
 * worker looks up and inserts by the thousand: request, user and batch ids.
 * They are opaque, so language rules buy nothing, and they cost a great deal
 * where the database's collation is a language one (en_US.UTF-8, the default
 * of many images and installers): PostgreSQL CPU per drained request 25 µs
 * against 16 µs (see docs/architecture.md). Byte order also keeps these indexes valid
 * when an operating system upgrade changes the C library's collation rules.
 */
const idText = customType<{ data: string }>({
  dataType: () => 'text COLLATE "C"',
});

export const coupons = pgTable(
  'coupons',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    name: text('name').notNull(),
    totalQuantity: integer('total_quantity').notNull(),
    /** Kept in the same transaction as the issued rows; the check below caps it at the total. */
    issuedCount: integer('issued_count').notNull().default(0),
    startsAt: timestamptz('starts_at'),
    endsAt: timestamptz('ends_at'),
    /** Set when an operator closes the event; requests still pending are then rejected EVENT_CLOSED. */
    closedAt: timestamptz('closed_at'),
    /** Set while an operator has paused the event: no request is accepted or decided. */
    pausedAt: timestamptz('paused_at'),
    /** Set once a finished event's Redis keys were deleted; its record stays here. */
    retiredAt: timestamptz('retired_at'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    check('coupons_total_positive', sql`${t.totalQuantity} > 0`),
    check(
      'coupons_issued_within_total',
      sql`${t.issuedCount} >= 0 AND ${t.issuedCount} <= ${t.totalQuantity}`,
    ),
    check(
      'coupons_window_ordered',
      sql`${t.startsAt} IS NULL OR ${t.endsAt} IS NULL OR ${t.startsAt} < ${t.endsAt}`,
    ),
  ],
);

export const issuedCoupons = pgTable(
  'issued_coupons',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    couponId: bigint('coupon_id', { mode: 'number' }).notNull(),
    userId: idText('user_id').notNull(),
    requestId: idText('request_id').notNull(),
    issuedAt: timestamptz('issued_at').notNull(),
  },
  (t) => [
    // The last line of defence: one coupon per user, whatever Redis says. A request id
    // names one coupon and one user, so this also allows at most one row per request.
    uniqueIndex('issued_coupons_coupon_user_uq').on(t.couponId, t.userId),
  ],
);

export const issueRequests = pgTable(
  'issue_requests',
  {
    requestId: idText('request_id').primaryKey(),
    couponId: bigint('coupon_id', { mode: 'number' }).notNull(),
    userId: idText('user_id').notNull(),
    status: text('status', { enum: ['ISSUED', 'REJECTED'] }).notNull(),
    reason: text('reason', { enum: ['SOLD_OUT', 'ALREADY_ISSUED', 'EVENT_CLOSED'] }),
    /** The issued_coupons row of an ISSUED request (same request_id). */
    issueId: bigint('issue_id', { mode: 'number' }),
    requestedAt: timestamptz('requested_at').notNull(),
    decidedAt: timestamptz('decided_at').notNull(),
  },
  // No index on coupon_id: the service never asks for a coupon's requests, and on a table
  // that takes every decided request, each index is a write per row (WAL per drained
  // request 589 bytes with it, 524 without; see docs/architecture.md). A request id starts with
  // "<couponId>-" and compares byte by byte, so `request_id LIKE '<couponId>-%'` finds one
  // coupon's requests through the primary key.
  (t) => [
    check(
      'issue_requests_outcome_consistent',
      sql`(${t.status} = 'ISSUED' AND ${t.reason} IS NULL AND ${t.issueId} IS NOT NULL)
        OR (${t.status} = 'REJECTED' AND ${t.reason} IS NOT NULL AND ${t.issueId} IS NULL)`,
    ),
  ],
);

/**
 * One row per batch the worker settled. The batch's own transaction writes
 * COMMITTED; recovery writes ABANDONED when it gives a batch up. Whichever
 * lands first wins the primary key, so a batch that was given up can never
 * commit late, and an ambiguous commit can be settled by asking this table.
 */
export const workerBatches = pgTable('worker_batches', {
  batchId: idText('batch_id').primaryKey(),
  couponId: bigint('coupon_id', { mode: 'number' }).notNull(),
  state: text('state', { enum: ['COMMITTED', 'ABANDONED'] }).notNull(),
  size: integer('size').notNull(),
  recordedAt: timestamptz('recorded_at').notNull().defaultNow(),
});

export type CouponRow = InferSelectModel<typeof coupons>;
export type IssuedCouponRow = InferSelectModel<typeof issuedCoupons>;
export type IssueRequestRow = InferSelectModel<typeof issueRequests>;
export type WorkerBatchRow = InferSelectModel<typeof workerBatches>;
