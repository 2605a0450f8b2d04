import { DomainError } from '../errors.js';
import { formatRequestId } from '../issue-request.js';
import type { IdGenerator, IssueGate } from '../ports.js';
import type { CouponGateLoader } from './coupon-gate-loader.js';

export interface SubmittedRequest {
  readonly requestId: string;
  readonly couponId: number;
  readonly userId: string;
  readonly status: 'PENDING';
  /** False when the user already had a pending request and got its id back. */
  readonly created: boolean;
}

const REJECTION_MESSAGES = {
  ALREADY_ISSUED: 'this user has already been issued this coupon',
  SOLD_OUT: 'every coupon of this event is taken',
  EVENT_NOT_OPEN: 'the event is not open for requests',
  EVENT_PAUSED: 'the event is paused; try again once it resumes',
} as const;

export class SubmitIssueRequest {
  constructor(
    private readonly deps: { gate: IssueGate; loader: CouponGateLoader; ids: IdGenerator },
  ) {}

  async execute(couponId: number, userId: string): Promise<SubmittedRequest> {
    const nonce = this.deps.ids.nonce();
    let result = await this.deps.gate.accept(couponId, userId, nonce);
    if (result.kind === 'notLoaded') {
      await this.deps.loader.ensureLoaded(couponId);
      result = await this.deps.gate.accept(couponId, userId, nonce);
    }
    switch (result.kind) {
      case 'accepted':
      case 'alreadyPending':
        return {
          requestId: formatRequestId({ couponId, arrival: result.arrival, nonce: result.nonce }),
          couponId,
          userId,
          status: 'PENDING',
          created: result.kind === 'accepted',
        };
      case 'rejected':
        throw new DomainError(result.code, REJECTION_MESSAGES[result.code]);
      case 'notLoaded':
        // Loaded a moment ago and gone again: Redis is losing data under us.
        throw new DomainError('DEPENDENCY_UNAVAILABLE', 'the coupon gate could not be loaded');
    }
  }
}
