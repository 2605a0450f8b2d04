import sinon from 'sinon';
import {
  BatchNotWrittenError,
  BatchOutcomeUnknownError,
  type DecidedBatch,
  type IssueLedger,
  type IssueQueue,
  type Metrics,
} from '../../src/domain/ports.js';
import { formatRequestId } from '../../src/domain/issue-request.js';
import { BatchSettler } from '../../src/domain/use-cases/batch-settler.js';
import { ProcessNextBatch } from '../../src/domain/use-cases/process-next-batch.js';
import { RecoverExpiredBatches } from '../../src/domain/use-cases/recover-expired-batches.js';

const batch: DecidedBatch = {
  batchId: 'b-1',
  couponId: 7,
  epoch: 'e1',
  decidedAt: new Date(0),
  items: [
    { userId: 'u1', arrival: '100', nonce: 'AAAAAAAAAA', outcome: 'ISSUED' },
    { userId: 'u2', arrival: '101', nonce: 'BBBBBBBBBB', outcome: 'ISSUED' },
  ],
};
const idOf = (i: number) => {
  const item = batch.items[i]!;
  return formatRequestId({ couponId: 7, arrival: item.arrival, nonce: item.nonce });
};

function fakes() {
  const queue = {
    activeCoupons: sinon.stub().resolves([7]),
    retireFinished: sinon.stub().resolves([]),
    reactivate: sinon.stub().resolves([]),
    take: sinon.stub().resolves(batch),
    acknowledge: sinon.stub().resolves('settled'),
    compensate: sinon.stub().resolves('settled'),
    claimExpired: sinon.stub().resolves([]),
  } satisfies IssueQueue;
  const ledger = {
    commit: sinon.stub(),
    settle: sinon.stub(),
    findRequest: sinon.stub(),
  } satisfies IssueLedger;
  const metrics = {
    decided: sinon.stub(),
    compensated: sinon.stub(),
    recovered: sinon.stub(),
    commitFailed: sinon.stub(),
  } satisfies Metrics;
  const settler = new BatchSettler({ queue, onGateRebuilt: sinon.stub().resolves(), metrics });
  const processNext = new ProcessNextBatch({
    queue,
    ledger,
    settler,
    ids: { nonce: () => 'n', batchId: () => 'b-1' },
    metrics,
  });
  const recover = new RecoverExpiredBatches({ queue, ledger, settler, metrics });
  return { queue, ledger, metrics, processNext, recover };
}

describe('what the batch use cases report to the metrics port', () => {
  it('when a batch commits, then its final outcomes are reported once, PostgreSQL’s corrections applied', async () => {
    const { ledger, metrics, processNext } = fakes();
    ledger.commit.resolves({
      kind: 'committed',
      outcomes: new Map([
        [idOf(0), { outcome: 'ISSUED' }],
        [idOf(1), { outcome: 'SOLD_OUT' }],
      ]),
    });

    await processNext.execute(7, 100, 1000);

    sinon.assert.calledOnceWithExactly(metrics.decided, {
      ISSUED: 1,
      SOLD_OUT: 1,
      ALREADY_ISSUED: 0,
      EVENT_CLOSED: 0,
    });
    sinon.assert.notCalled(metrics.compensated);
    sinon.assert.notCalled(metrics.commitFailed);
  });

  it('when the commit is rolled back, then a failed commit and a compensation are reported, and no decision', async () => {
    const { ledger, metrics, processNext } = fakes();
    ledger.commit.rejects(new BatchNotWrittenError(new Error('boom')));

    await processNext.execute(7, 100, 1000);

    sinon.assert.calledOnce(metrics.commitFailed);
    sinon.assert.calledOnce(metrics.compensated);
    sinon.assert.notCalled(metrics.decided);
  });

  it('when the commit outcome is unknown and PostgreSQL cannot settle it, then a failed commit is reported and nothing else', async () => {
    const { ledger, metrics, processNext } = fakes();
    ledger.commit.rejects(new BatchOutcomeUnknownError(new Error('reset')));
    ledger.settle.rejects(new Error('still down'));

    await processNext.execute(7, 100, 1000);

    sinon.assert.calledOnce(metrics.commitFailed);
    sinon.assert.notCalled(metrics.compensated);
    sinon.assert.notCalled(metrics.decided);
  });

  it('when expired batches are recovered, then each is reported, with its decisions once settled', async () => {
    const { queue, ledger, metrics, recover } = fakes();
    queue.claimExpired.resolves([batch, { ...batch, batchId: 'b-2' }]);
    ledger.settle.onFirstCall().resolves({
      kind: 'committed',
      outcomes: new Map([
        [idOf(0), { outcome: 'ISSUED' }],
        [idOf(1), { outcome: 'ISSUED' }],
      ]),
    });
    ledger.settle.onSecondCall().resolves({ kind: 'abandoned' });

    await recover.execute([7], 1000);

    sinon.assert.calledTwice(metrics.recovered);
    sinon.assert.calledOnce(metrics.decided);
    sinon.assert.calledOnce(metrics.compensated);
  });
});
