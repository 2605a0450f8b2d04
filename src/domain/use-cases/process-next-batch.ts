import {
  BatchNotWrittenError,
  NO_FAULTS,
  type CommitResult,
  type FaultPoints,
  type IdGenerator,
  type IssueLedger,
  type IssueQueue,
} from '../ports.js';
import { batchReport, type BatchReport, type BatchSettler } from './batch-settler.js';

export class ProcessNextBatch {
  constructor(
    private readonly deps: {
      queue: IssueQueue;
      ledger: IssueLedger;
      settler: BatchSettler;
      ids: IdGenerator;
      faults?: FaultPoints;
    },
  ) {}

  /** Takes, decides, records and settles one batch; null when the queue is empty. */
  async execute(couponId: number, size: number, leaseMs: number): Promise<BatchReport | null> {
    const faults = this.deps.faults ?? NO_FAULTS;
    const batch = await this.deps.queue.take(couponId, size, leaseMs, this.deps.ids.batchId());
    if (!batch) return null;
    // Taking and deciding are one script: "after the take" is also "after the decision".
    await faults.reach('after-take');
    let result: CommitResult;
    try {
      result = await this.deps.ledger.commit(batch);
    } catch (commitError) {
      if (commitError instanceof BatchNotWrittenError) {
        return this.deps.settler.compensate(batch, commitError);
      }
      // The commit may have landed: only PostgreSQL can say, so ask it before touching Redis.
      try {
        result = await this.deps.ledger.settle(batch);
      } catch {
        return batchReport(batch, 'leased', [], commitError);
      }
    }
    await faults.reach('after-commit');
    return this.deps.settler.apply(batch, result);
  }
}
