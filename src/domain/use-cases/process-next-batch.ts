import {
  BatchNotWrittenError,
  NO_FAULTS,
  type CommitResult,
  type DecidedBatch,
  type FaultPoints,
  type IdGenerator,
  type IssueLedger,
  type IssueQueue,
  type Metrics,
} from '../ports.js';
import { batchReport, type BatchReport, type BatchSettler } from './batch-settler.js';

export class ProcessNextBatch {
  /** Per coupon, the commit of the batch taken last: the next batch commits after it. */
  private readonly lastCommit = new Map<number, Promise<void>>();

  constructor(
    private readonly deps: {
      queue: IssueQueue;
      ledger: IssueLedger;
      settler: BatchSettler;
      ids: IdGenerator;
      faults?: FaultPoints;
      metrics?: Metrics;
    },
  ) {}

  /** Takes, decides, records and settles one batch; null when the queue is empty. */
  async execute(couponId: number, size: number, leaseMs: number): Promise<BatchReport | null> {
    const faults = this.deps.faults ?? NO_FAULTS;
    const batch = await this.deps.queue.take(couponId, size, leaseMs, this.deps.ids.batchId());
    if (!batch) return null;
    try {
      return await this.decide(batch, faults);
    } catch (err) {
      // A store's failure past the take ends in a report, so this is not expected; whatever
      // it is, its log line must name the batch it left leased.
      throw new BatchFailedError(batch.couponId, batch.batchId, err);
    }
  }

  private async decide(batch: DecidedBatch, faults: FaultPoints): Promise<BatchReport> {
    const { couponId } = batch;
    // Batches of one coupon commit in the order they were taken, whatever lane holds them.
    // PostgreSQL serialises them on the coupon's row lock anyway; this only fixes the order,
    // so that when the database overrules Redis (less room than Redis believed), the last
    // coupons go to the earlier requests. (Takes resolve in the order Redis ran them: one
    // connection, replies in order.)
    const previous = this.lastCommit.get(couponId);
    let release: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.lastCommit.set(couponId, mine);
    let result: CommitResult;
    try {
      // Taking and deciding are one script: "after the take" is also "after the decision".
      await faults.reach('after-take', batch.batchId);
      await previous;
      try {
        result = await this.deps.ledger.commit(batch);
      } catch (commitError) {
        this.deps.metrics?.commitFailed();
        if (commitError instanceof BatchNotWrittenError) {
          return await this.deps.settler.compensate(batch, commitError);
        }
        // The commit may have landed: only PostgreSQL can say, so ask it before touching Redis.
        try {
          result = await this.deps.ledger.settle(batch);
        } catch {
          return batchReport(batch, 'leased', [], commitError);
        }
      }
    } finally {
      release();
      if (this.lastCommit.get(couponId) === mine) this.lastCommit.delete(couponId);
    }
    await faults.reach('after-commit', batch.batchId);
    return this.deps.settler.apply(batch, result);
  }
}

/**
 * A batch failed past its take for a reason no store explains (a bug): it stays leased until
 * recovery settles it. Carries the batch's ids for the log; the failure is its `cause`.
 */
export class BatchFailedError extends Error {
  constructor(
    readonly couponId: number,
    readonly batchId: string,
    cause: unknown,
  ) {
    super(`batch ${batchId} of coupon ${couponId} failed`, { cause });
    this.name = 'BatchFailedError';
  }
}
