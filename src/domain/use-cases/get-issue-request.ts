import { DomainError } from '../errors.js';
import {
  arrivalToDate,
  parseRequestId,
  type IssueRequestView,
  type RequestRef,
} from '../issue-request.js';
import type { CouponRepository, IssueGate, IssueLedger, PendingLookup } from '../ports.js';
import { isFinishedRefusal, type CouponGateLoader } from './coupon-gate-loader.js';

export class GetIssueRequest {
  constructor(
    private readonly deps: {
      gate: IssueGate;
      ledger: IssueLedger;
      loader: CouponGateLoader;
      coupons: CouponRepository;
    },
  ) {}

  /**
   * Pending requests are answered from Redis, final ones from PostgreSQL. A
   * request in neither that arrived after the coupon was created but before
   * its gate was last loaded was waiting in a Redis that lost its data:
   * REQUEST_LOST, so the client knows to ask again.
   */
  async execute(requestId: string, owner?: string): Promise<IssueRequestView> {
    const view = await this.find(requestId);
    // Another user's request is answered exactly as one that does not exist: whether an id
    // is real, and whose it is, is nobody else's business.
    if (owner !== undefined && view.userId !== owner) throw notFound(requestId);
    return view;
  }

  private async find(requestId: string): Promise<IssueRequestView> {
    const ref = parseRequestId(requestId);
    let pending = await this.deps.gate.pending(ref);
    if (pending.kind === 'waiting') {
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
    if (final) return final;
    if (pending.since === null) pending = await this.loadGateAndLookAgain(ref, pending);
    if (
      pending.kind === 'absent' &&
      pending.since !== null &&
      BigInt(ref.arrival) < BigInt(pending.since) &&
      (await this.arrivedAfterCreation(ref.couponId, ref.arrival))
    ) {
      throw new DomainError(
        'REQUEST_LOST',
        `issue request ${requestId} was waiting when Redis lost its data; submit a new request`,
      );
    }
    throw notFound(requestId);
  }

  private async arrivedAfterCreation(couponId: number, arrival: string): Promise<boolean> {
    const coupon = await this.deps.coupons.findById(couponId);
    return coupon !== null && BigInt(arrival) >= BigInt(coupon.createdAt.getTime()) * 1000n;
  }

  /** The gate is not loaded (Redis lost it): load it, so "lost" can be told from "never existed". */
  private async loadGateAndLookAgain(
    ref: RequestRef,
    absent: PendingLookup,
  ): Promise<PendingLookup> {
    try {
      await this.deps.loader.ensureLoaded(ref.couponId);
    } catch (err) {
      if (err instanceof DomainError && err.code === 'COUPON_NOT_FOUND') return absent;
      // An event that is over gets no gate again, and all of its requests that Redis still had
      // were recorded before its keys were retired: one that is not in PostgreSQL was lost, as
      // a gate loaded now would have said.
      if (isFinishedRefusal(err)) {
        return { kind: 'absent', since: String(BigInt(Date.now()) * 1000n) };
      }
      throw err;
    }
    return this.deps.gate.pending(ref);
  }
}

function notFound(requestId: string): DomainError {
  return new DomainError('REQUEST_NOT_FOUND', `issue request ${requestId} does not exist`);
}
