import { DomainError } from './errors.js';

export type FinalStatus = 'ISSUED' | 'REJECTED';
export type RequestStatus = 'PENDING' | FinalStatus;
export type RejectionReason = 'SOLD_OUT' | 'ALREADY_ISSUED' | 'EVENT_CLOSED';
export type Outcome = 'ISSUED' | RejectionReason;

export const USER_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * A request id names the coupon, the request's place in that coupon's queue
 * (its arrival time in microseconds, unique per coupon) and a random nonce so
 * that ids cannot be guessed from one another:
 * `<couponId>-<arrival base36>-<nonce>`.
 */
export interface RequestRef {
  readonly couponId: number;
  readonly arrival: string;
  readonly nonce: string;
}

// Canonical form only (no leading zeros), so one request has exactly one id.
const REQUEST_ID_PATTERN = /^([1-9][0-9]{0,14})-([1-9a-z][0-9a-z]{0,11})-([A-Za-z0-9]{10})$/;
export const NONCE_LENGTH = 10;

export function formatRequestId(ref: RequestRef): string {
  return `${ref.couponId}-${BigInt(ref.arrival).toString(36)}-${ref.nonce}`;
}

export function parseRequestId(id: string): RequestRef {
  const match = REQUEST_ID_PATTERN.exec(id);
  if (!match) {
    throw new DomainError('VALIDATION_FAILED', 'requestId is malformed', {
      errors: [{ path: 'requestId', message: 'expected <couponId>-<arrival>-<nonce>' }],
    });
  }
  const [, coupon, arrival36, nonce] = match as unknown as [string, string, string, string];
  let arrival = 0n;
  for (const digit of arrival36) arrival = arrival * 36n + BigInt(parseInt(digit, 36));
  return { couponId: Number(coupon), arrival: arrival.toString(), nonce };
}

/** Arrival scores are microseconds since the epoch, taken from Redis TIME. */
export function arrivalToDate(arrival: string): Date {
  return new Date(Number(BigInt(arrival) / 1000n));
}

export interface IssueRequestView {
  readonly requestId: string;
  readonly couponId: number;
  readonly userId: string;
  readonly status: RequestStatus;
  readonly reason: RejectionReason | null;
  readonly queuePosition: number | null;
  readonly issueId: number | null;
  readonly requestedAt: Date;
  readonly decidedAt: Date | null;
}
