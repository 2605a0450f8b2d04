import { DomainError } from '../errors.js';
import { arrivalToDate, parseRequestId, type IssueRequestView } from '../issue-request.js';
import type { IssueGate, IssueLedger } from '../ports.js';

export class GetIssueRequest {
  constructor(private readonly deps: { gate: IssueGate; ledger: IssueLedger }) {}

  /** Pending requests are answered from Redis, final ones from PostgreSQL. */
  async execute(requestId: string): Promise<IssueRequestView> {
    const ref = parseRequestId(requestId);
    const pending = await this.deps.gate.pending(ref);
    if (pending) {
      return {
        requestId,
        couponId: ref.couponId,
        userId: pending.userId,
        status: 'PENDING',
        reason: null,
        queuePosition: pending.queuePosition,
        issueId: null,
        requestedAt: arrivalToDate(ref.arrival),
        decidedAt: null,
      };
    }
    const final = await this.deps.ledger.findRequest(requestId);
    if (!final)
      throw new DomainError('REQUEST_NOT_FOUND', `issue request ${requestId} does not exist`);
    return final;
  }
}
