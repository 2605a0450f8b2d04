import type { IssueLedger, IssueQueue, Metrics } from '../ports.js';
import { batchReport, type BatchReport, type BatchSettler } from './batch-settler.js';

const CLAIM_LIMIT = 20;

/**
 * Settles batches whose worker died, froze or lost its connection before
 * settling them: PostgreSQL says whether each was committed (roll forward) or
 * fences it off for good (compensate). Safe to run in every worker at once.
 */
export class RecoverExpiredBatches {
  constructor(
    private readonly deps: {
      queue: IssueQueue;
      ledger: IssueLedger;
      settler: BatchSettler;
      metrics?: Metrics;
    },
  ) {}

  async execute(couponIds: readonly number[], leaseMs: number): Promise<BatchReport[]> {
    const reports: BatchReport[] = [];
    for (const couponId of couponIds) {
      const batches = await this.deps.queue.claimExpired(couponId, leaseMs, CLAIM_LIMIT);
      for (const batch of batches) {
        this.deps.metrics?.recovered();
        try {
          reports.push(await this.deps.settler.apply(batch, await this.deps.ledger.settle(batch)));
        } catch (err) {
          reports.push(batchReport(batch, 'leased', [], err));
        }
      }
    }
    return reports;
  }
}
