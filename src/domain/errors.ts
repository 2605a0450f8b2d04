/**
 * Every error the service expects carries a stable `code`. Clients and
 * operators match on the code, never on the message; the API maps codes to
 * HTTP statuses in one place.
 */
export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'INVALID_JSON'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'COUPON_NOT_FOUND'
  | 'REQUEST_NOT_FOUND'
  | 'REQUEST_LOST'
  | 'BATCH_IN_FLIGHT'
  | 'SYNC_IN_PROGRESS'
  | 'SYNC_LOCK_LOST'
  | 'ALREADY_ISSUED'
  | 'SOLD_OUT'
  | 'EVENT_NOT_OPEN'
  | 'DEPENDENCY_UNAVAILABLE'
  | 'EVENT_PAUSED'
  | 'EVENT_FINISHED'
  | 'QUANTITY_BELOW_ISSUED'
  | 'RATE_LIMITED';

export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: { readonly errors?: readonly FieldIssue[] },
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** The one answer for a coupon id that names no event. */
export function couponNotFound(couponId: number): DomainError {
  return new DomainError('COUPON_NOT_FOUND', `coupon ${couponId} does not exist`);
}

/**
 * Raised by adapters when Redis or PostgreSQL cannot be reached or does not
 * answer in time. Expected during outages; answered with 503.
 */
export class DependencyUnavailableError extends DomainError {
  constructor(
    readonly dependency: 'redis' | 'postgres',
    cause?: unknown,
  ) {
    super(
      'DEPENDENCY_UNAVAILABLE',
      `${dependency === 'redis' ? 'Redis' : 'PostgreSQL'} is unavailable`,
    );
    this.cause = cause;
  }
}
