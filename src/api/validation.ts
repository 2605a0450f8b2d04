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

const timestamp = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 date-time with a time zone' })
  .transform((v) => new Date(v))
  .nullish()
  .transform((v) => v ?? null);

export const createCouponBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  totalQuantity: z.number().int().min(1).max(MAX_TOTAL_QUANTITY),
  startsAt: timestamp,
  endsAt: timestamp,
});

export const issueRequestBody = z.strictObject({
  userId: z.string().regex(USER_ID_PATTERN, 'must be 1-64 characters from A-Z a-z 0-9 _ . : -'),
});

/** Parses with zod; a failure becomes VALIDATION_FAILED naming every bad field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join('.'),
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
