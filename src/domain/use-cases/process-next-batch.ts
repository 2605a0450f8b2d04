import { formatRequestId, type Outcome } from '../issue-request.js';
import {
  BatchNotWrittenError,
  type CommitResult,
  type Correction,
  type DecidedBatch,
  type IdGenerator,
  type IssueLedger,
  type IssueQueue,
} from '../ports.js';

/**
 * How a batch ended:
 * - `committed`: PostgreSQL holds it and Redis has forgotten it;
 * - `compensated`: PostgreSQL does not hold it; Redis undid its decisions and
 *   the requests are back in the queue at their original places;
 * - `leased`: neither could be confirmed (a store is down); the batch stays
 *   recorded in flight and is settled when its lease expires.
 */
export type BatchSettlement = 'committed' | 'compensated' | 'leased';

export interface BatchReport {
  readonly couponId: number;
  readonly batchId: string;
  readonly size: number;
  readonly outcomes: Readonly<Record<Outcome, number>>;
  readonly corrections: number;
  readonly settlement: BatchSettlement;
  readonly error?: unknown;
}

export class ProcessNextBatch {
  constructor(
    private readonly deps: { queue: IssueQueue; ledger: IssueLedger; ids: IdGenerator },
  ) {}

  /** Takes, decides, records and settles one batch; null when the queue is empty. */
  async execute(couponId: number, size: number, leaseMs: number): Promise<BatchReport | null> {
    const batch = await this.deps.queue.take(couponId, size, leaseMs, this.deps.ids.batchId());
    if (!batch) return null;
    let result: CommitResult;
    try {
      result = await this.deps.ledger.commit(batch);
    } catch (commitError) {
      if (commitError instanceof BatchNotWrittenError) {
        return this.compensate(batch, commitError);
      }
      // The commit may have landed: only PostgreSQL can say, so ask it before touching Redis.
      try {
        result = await this.deps.ledger.settle(batch);
      } catch {
        return report(batch, 'leased', [], commitError);
      }
    }
    return this.apply(batch, result);
  }

  /** Brings Redis in line with what PostgreSQL recorded for the batch. */
  async apply(batch: DecidedBatch, result: CommitResult): Promise<BatchReport> {
    if (result.kind === 'abandoned') return this.compensate(batch);
    const corrections = correctionsFor(batch, result.outcomes);
    try {
      await this.deps.queue.acknowledge(batch, corrections);
    } catch (err) {
      return report(batch, 'leased', corrections, err);
    }
    return report(batch, 'committed', corrections);
  }

  private async compensate(batch: DecidedBatch, cause?: unknown): Promise<BatchReport> {
    try {
      await this.deps.queue.compensate(batch);
    } catch (err) {
      return report(batch, 'leased', [], err);
    }
    return report(batch, 'compensated', [], cause);
  }
}

export function correctionsFor(
  batch: DecidedBatch,
  recorded: ReadonlyMap<string, { outcome: Outcome }>,
): Correction[] {
  const corrections: Correction[] = [];
  for (const item of batch.items) {
    const requestId = formatRequestId({
      couponId: batch.couponId,
      arrival: item.arrival,
      nonce: item.nonce,
    });
    const final = recorded.get(requestId);
    if (final && final.outcome !== item.outcome) {
      corrections.push({ userId: item.userId, from: item.outcome, to: final.outcome });
    }
  }
  return corrections;
}

function report(
  batch: DecidedBatch,
  settlement: BatchSettlement,
  corrections: readonly Correction[],
  error?: unknown,
): BatchReport {
  const outcomes: Record<Outcome, number> = {
    ISSUED: 0,
    SOLD_OUT: 0,
    ALREADY_ISSUED: 0,
    EVENT_CLOSED: 0,
  };
  const corrected = new Map(corrections.map((c) => [c.userId, c.to]));
  for (const item of batch.items) outcomes[corrected.get(item.userId) ?? item.outcome] += 1;
  return {
    couponId: batch.couponId,
    batchId: batch.batchId,
    size: batch.items.length,
    outcomes,
    corrections: corrections.length,
    settlement,
    ...(error === undefined ? {} : { error }),
  };
}
