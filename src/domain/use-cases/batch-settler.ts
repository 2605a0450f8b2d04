import { formatRequestId, type Outcome } from '../issue-request.js';
import {
  NO_METRICS,
  type CommitResult,
  type Correction,
  type DecidedBatch,
  type IssueQueue,
  type Metrics,
} from '../ports.js';

/**
 * How a batch ended:
 * - `committed`: PostgreSQL holds it and Redis has forgotten it;
 * - `compensated`: PostgreSQL does not hold it; Redis undid its decisions and
 *   the requests are back in the queue at their original places;
 * - `leased`: neither could be confirmed (a store is down); the batch stays
 *   recorded in flight and is settled when its lease expires;
 * - `lost`: PostgreSQL does not hold it and Redis lost it (and its requests)
 *   with its data; those requests are answered REQUEST_LOST.
 */
export type BatchSettlement = 'committed' | 'compensated' | 'leased' | 'lost';

export interface BatchReport {
  readonly couponId: number;
  readonly batchId: string;
  readonly size: number;
  readonly outcomes: Readonly<Record<Outcome, number>>;
  readonly corrections: number;
  readonly settlement: BatchSettlement;
  readonly error?: unknown;
}

/**
 * Brings Redis in line with what PostgreSQL recorded for a batch: the one
 * place that decides between acknowledging and compensating.
 */
export class BatchSettler {
  constructor(
    private readonly deps: {
      queue: IssueQueue;
      /** Called when Redis lost its data since the batch was taken: the gate must be synced. */
      onGateRebuilt: (couponId: number) => Promise<unknown>;
      metrics?: Metrics;
    },
  ) {}

  private get metrics(): Metrics {
    return this.deps.metrics ?? NO_METRICS;
  }

  async apply(batch: DecidedBatch, result: CommitResult): Promise<BatchReport> {
    if (result.kind === 'abandoned') return this.compensate(batch);
    const corrections = correctionsFor(batch, result.outcomes);
    try {
      const settled = await this.deps.queue.acknowledge(batch, corrections);
      // PostgreSQL holds the batch, but the gate it was decided against is gone: rebuild it.
      if (settled === 'gateRebuilt') await this.deps.onGateRebuilt(batch.couponId);
    } catch (err) {
      return batchReport(batch, 'leased', corrections, err);
    }
    const report = batchReport(batch, 'committed', corrections);
    this.metrics.decided(report.outcomes);
    return report;
  }

  async compensate(batch: DecidedBatch, cause?: unknown): Promise<BatchReport> {
    try {
      const settled = await this.deps.queue.compensate(batch);
      if (settled === 'gateRebuilt') {
        await this.deps.onGateRebuilt(batch.couponId);
        return batchReport(batch, 'lost', [], cause);
      }
    } catch (err) {
      return batchReport(batch, 'leased', [], err);
    }
    this.metrics.compensated();
    return batchReport(batch, 'compensated', [], cause);
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

export function batchReport(
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
