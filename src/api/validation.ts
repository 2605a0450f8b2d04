import type { RequestHandler } from 'express';
import { z } from 'zod';
import { MAX_TOTAL_QUANTITY } from '../domain/coupon.js';
import { DomainError } from '../domain/errors.js';
import { USER_ID_PATTERN } from '../domain/issue-request.js';
import { sendProblem } from './problem.js';

export const couponIdParam = z
  .string()
  .regex(/^[1-9][0-9]{0,14}$/, 'must be a positive integer id')
  .transform(Number);

// PostgreSQL cannot store year 0 or years past 9999 as written, and dates in
// years 1-99 do not survive the round trip back into a JS Date; an event window
// outside the Unix era is a typo anyway.
const EARLIEST = new Date('1970-01-01T00:00:00.000Z');
const LATEST = new Date('9999-12-31T23:59:59.999Z');

const instant = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 date-time with a time zone' })
  .transform((v) => new Date(v))
  .refine((d) => d >= EARLIEST && d <= LATEST, {
    message: 'must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z',
  });

const timestamp = instant.nullish().transform((v) => v ?? null);

const couponName = z
  .string()
  .trim()
  .min(1)
  .max(200)
  // PostgreSQL text cannot hold NUL (the insert fails), and a lone surrogate
  // would be stored as U+FFFD: refuse both instead of failing or altering the name.
  .refine((v) => !v.includes('\u0000') && !/\p{Surrogate}/u.test(v), {
    message: 'must be well-formed Unicode without NUL characters',
  });

const totalQuantity = z.number().int().min(1).max(MAX_TOTAL_QUANTITY);

export const createCouponBody = z.strictObject({
  name: couponName,
  totalQuantity,
  startsAt: timestamp,
  endsAt: timestamp,
});

/** A field left out stays as it is; a window bound set to null is removed. */
export const updateCouponBody = z
  .strictObject({
    name: couponName.optional(),
    totalQuantity: totalQuantity.optional(),
    startsAt: instant.nullable().optional(),
    endsAt: instant.nullable().optional(),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), {
    message: 'must change at least one of name, totalQuantity, startsAt, endsAt',
  });

export const COUPON_STATUSES = [
  'OPEN',
  'SCHEDULED',
  'PAUSED',
  'SOLD_OUT',
  'ENDED',
  'CLOSED',
] as const;

/**
 * The page cursor is opaque to clients (base64url of the last id served), so
 * the paging scheme can change without breaking them.
 */
export function encodeCursor(afterId: number): string {
  return Buffer.from(String(afterId), 'utf8').toString('base64url');
}

const cursor = z.string().transform((value, ctx) => {
  const decoded = Buffer.from(value, 'base64url').toString('utf8');
  if (!/^[1-9][0-9]{0,14}$/.test(decoded) || encodeCursor(Number(decoded)) !== value) {
    ctx.addIssue({ code: 'custom', message: 'must be a nextCursor from an earlier page' });
    return z.NEVER;
  }
  return Number(decoded);
});

export const listCouponsQuery = z.strictObject({
  status: z.enum(COUPON_STATUSES).optional(),
  limit: z
    .string()
    .regex(/^[1-9][0-9]{0,2}$/, 'must be an integer from 1 to 100')
    .transform(Number)
    .refine((n) => n <= 100, 'must be an integer from 1 to 100')
    .optional(),
  after: cursor.optional(),
});

const userId = z
  .string()
  .regex(USER_ID_PATTERN, 'must be 1-64 characters from A-Z a-z 0-9 _ . : -');

export const issueRequestBody = z.strictObject({ userId });

/** With a bearer token the token names the user; the body may repeat it. */
export const identifiedIssueRequestBody = z.strictObject({ userId: userId.optional() });

/** Parses with zod; a failure becomes VALIDATION_FAILED naming every bad field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // Fields are named as the client sent them (`endsAt`, `userId`), like the domain's own errors.
  const errors = result.error.issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.map(String).join('.') : where,
    message: issue.message,
  }));
  throw new DomainError('VALIDATION_FAILED', `invalid ${where}`, { errors });
}

/** Bodies must be declared JSON; anything else is refused before it is read. */
export const requireJson: RequestHandler = (req, res, next) => {
  if (!req.is('application/json')) {
    sendProblem(res, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
    return;
  }
  next();
};
