import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { PROBLEM_CODES } from './problem.js';

// Adds `.openapi(name)`: a schema so named becomes a component the document refers to.
extendZodWithOpenApi(z);

/**
 * The answers' shapes in zod: the API description is generated from them, and
 * the contract tests parse real answers with them, so the two cannot drift.
 * Strict objects: an answer with a field the description lacks fails the tests.
 */
const dateTime = z.iso.datetime({ offset: true });

export const couponStatus = z.enum(['SCHEDULED', 'OPEN', 'PAUSED', 'SOLD_OUT', 'ENDED', 'CLOSED']);

const coupon = z.strictObject({
  id: z.number().int(),
  name: z.string(),
  totalQuantity: z.number().int(),
  issuedCount: z.number().int(),
  remaining: z.number().int(),
  startsAt: dateTime.nullable(),
  endsAt: dateTime.nullable(),
  status: couponStatus,
});

export const couponView = coupon.openapi('Coupon');

const listedCoupon = coupon.extend({
  queued: z.number().int().nullable(),
  inFlight: z.number().int().nullable(),
  pausedAt: dateTime.nullable(),
  closedAt: dateTime.nullable(),
  createdAt: dateTime,
});

export const couponPage = z
  .strictObject({
    items: z.array(listedCoupon),
    limit: z.number().int(),
    nextCursor: z.string().nullable(),
  })
  .openapi('CouponPage');

export const couponStats = z
  .strictObject({
    couponId: z.number().int(),
    status: couponStatus,
    loaded: z.boolean(),
    totalQuantity: z.number().int(),
    remaining: z.number().int(),
    queued: z.number().int(),
    inFlight: z.number().int(),
    issued: z.number().int(),
    rejected: z.strictObject({
      SOLD_OUT: z.number().int(),
      ALREADY_ISSUED: z.number().int(),
      EVENT_CLOSED: z.number().int(),
    }),
    rates: z.strictObject({
      windowSeconds: z.number().int(),
      accepted: z.number().int(),
      issued: z.number().int(),
    }),
  })
  .openapi('CouponStats');

export const createdCoupon = coupon
  .omit({ issuedCount: true, remaining: true })
  .openapi('CreatedCoupon');

export const acceptedIssueRequest = z
  .strictObject({
    requestId: z.string(),
    couponId: z.number().int(),
    userId: z.string(),
    status: z.literal('PENDING'),
  })
  .openapi('AcceptedIssueRequest');

export const issueRequestView = z
  .strictObject({
    requestId: z.string(),
    couponId: z.number().int(),
    userId: z.string(),
    status: z.enum(['PENDING', 'ISSUED', 'REJECTED']),
    reason: z.enum(['SOLD_OUT', 'ALREADY_ISSUED', 'EVENT_CLOSED']).nullable(),
    queuePosition: z.number().int().nullable(),
    issueId: z.number().int().nullable(),
    requestedAt: dateTime,
    decidedAt: dateTime.nullable(),
  })
  .openapi('IssueRequest');

/** RFC 9457 problem details, with the stable `code` clients branch on. */
export const problem = z
  .strictObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.enum(PROBLEM_CODES as [string, ...string[]]),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem');

/** Operator and probe answers: described by their top-level fields, open to additions. */
export const operatorReport = z.looseObject({});

export const probe = z.looseObject({
  status: z.string(),
  failing: z.array(z.string()).optional(),
});
