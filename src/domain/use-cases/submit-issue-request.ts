import { DomainError } from '../errors.js';
import { formatRequestId } from '../issue-request.js';
import type { AdmissionQuota, IdGenerator, IssueGate, QuotaReading } from '../ports.js';
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

/** The quotas a request is counted against as it is admitted (see `IssueGate.accept`). */
export interface Admission {
  readonly quotas: readonly (AdmissionQuota & {
    /** What the client is told when the request is over this quota. */
    readonly refusal: string;
  })[];
  /**
   * Called once the request was counted, with one reading per quota, before the
   * answer (or the RATE_LIMITED error) leaves; `over` is the quota that refused it.
   */
  readonly onReadings: (readings: readonly QuotaReading[], over?: AdmissionQuota) => void;
}

export class SubmitIssueRequest {
  constructor(
    private readonly deps: { gate: IssueGate; loader: CouponGateLoader; ids: IdGenerator },
  ) {}

  async execute(
    couponId: number,
    userId: string,
    admission?: Admission,
  ): Promise<SubmittedRequest> {
    const nonce = this.deps.ids.nonce();
    const quotas = admission?.quotas;
    let result = await this.deps.gate.accept(couponId, userId, nonce, quotas);
    if (result.kind === 'notLoaded') {
      await this.deps.loader.ensureLoaded(couponId);
      result = await this.deps.gate.accept(couponId, userId, nonce, quotas);
    }
    if (admission && result.readings) {
      admission.onReadings(result.readings, result.kind === 'overQuota' ? result.quota : undefined);
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
      case 'overQuota': {
        const refusal = quotas?.find((q) => q === result.quota)?.refusal;
        throw new DomainError('RATE_LIMITED', refusal ?? 'too many requests');
      }
      case 'notLoaded':
        // Loaded a moment ago and gone again: Redis is losing data under us.
        throw new DomainError('DEPENDENCY_UNAVAILABLE', 'the coupon gate could not be loaded');
    }
  }
}
