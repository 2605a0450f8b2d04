import { expect } from 'chai';
import sinon from 'sinon';
import {
  BatchNotWrittenError,
  BatchOutcomeUnknownError,
  type DecidedBatch,
  type IssueLedger,
  type IssueQueue,
  type RecordedOutcome,
} from '../../src/domain/ports.js';
import { formatRequestId } from '../../src/domain/issue-request.js';
import { BatchSettler } from '../../src/domain/use-cases/batch-settler.js';
import {
  BatchFailedError,
  ProcessNextBatch,
} from '../../src/domain/use-cases/process-next-batch.js';

const batch: DecidedBatch = {
  batchId: 'b-1',
  couponId: 7,
  epoch: 'e1',
  decidedAt: new Date(0),
  items: [
    { userId: 'u1', arrival: '100', nonce: 'AAAAAAAAAA', outcome: 'ISSUED' },
    { userId: 'u2', arrival: '101', nonce: 'BBBBBBBBBB', outcome: 'ISSUED' },
    { userId: 'u3', arrival: '102', nonce: 'CCCCCCCCCC', outcome: 'SOLD_OUT' },
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
  const onGateRebuilt = sinon.stub().resolves();
  const settler = new BatchSettler({ queue, onGateRebuilt });
  const useCase = new ProcessNextBatch({
    queue,
    ledger,
    settler,
    ids: { nonce: () => 'n', batchId: () => 'b-1' },
  });
  return { queue, ledger, useCase, onGateRebuilt };
}

const recordedAsDecided = new Map<string, RecordedOutcome>([
  [idOf(0), { outcome: 'ISSUED' as const }],
  [idOf(1), { outcome: 'ISSUED' as const }],
  [idOf(2), { outcome: 'SOLD_OUT' as const }],
]);

describe('processing one batch', () => {
  it('when the queue is empty, then nothing is committed', async () => {
    const { queue, ledger, useCase } = fakes();
    queue.take.resolves(null);

    expect(await useCase.execute(7, 100, 1000)).to.equal(null);
    expect(ledger.commit.called).to.equal(false);
  });

  it('when something past the take throws, then the error names the batch and carries the failure', async () => {
    const { ledger, useCase } = fakes();
    const bug = new TypeError('a bug');
    ledger.commit.resolves({ kind: 'committed', outcomes: recordedAsDecided });
    // Not a store failing (those end in a report): a settler that throws stands in for a bug.
    sinon.stub(BatchSettler.prototype, 'apply').rejects(bug);
    try {
      const failure = await useCase.execute(7, 100, 1000).then(
        () => undefined,
        (err: unknown) => err,
      );

      expect(failure).to.be.instanceOf(BatchFailedError);
      expect(failure).to.include({ couponId: 7, batchId: 'b-1', cause: bug });
    } finally {
      sinon.restore();
    }
  });

  it('when the commit succeeds as decided, then the batch is acknowledged with no corrections', async () => {
    const { queue, ledger, useCase } = fakes();
    ledger.commit.resolves({ kind: 'committed', outcomes: recordedAsDecided });

    const report = await useCase.execute(7, 100, 1000);

    expect(queue.take.calledOnceWithExactly(7, 100, 1000, 'b-1')).to.equal(true);
    expect(queue.acknowledge.calledOnceWithExactly(batch, [])).to.equal(true);
    expect(queue.compensate.called).to.equal(false);
    expect(report).to.deep.include({ settlement: 'committed', size: 3, corrections: 0 });
    expect(report?.outcomes).to.deep.equal({
      ISSUED: 2,
      SOLD_OUT: 1,
      ALREADY_ISSUED: 0,
      EVENT_CLOSED: 0,
    });
  });

  it('when PostgreSQL overrules a decision, then the correction is passed to Redis and counted', async () => {
    const { queue, ledger, useCase } = fakes();
    const outcomes = new Map(recordedAsDecided);
    outcomes.set(idOf(1), { outcome: 'ALREADY_ISSUED' });
    ledger.commit.resolves({ kind: 'committed', outcomes });

    const report = await useCase.execute(7, 100, 1000);

    expect(queue.acknowledge.firstCall.args[1]).to.deep.equal([
      { userId: 'u2', from: 'ISSUED', to: 'ALREADY_ISSUED' },
    ]);
    expect(report?.outcomes).to.deep.equal({
      ISSUED: 1,
      SOLD_OUT: 1,
      ALREADY_ISSUED: 1,
      EVENT_CLOSED: 0,
    });
  });

  it('when the transaction was certainly rolled back, then Redis is compensated without asking PostgreSQL again', async () => {
    const { queue, ledger, useCase } = fakes();
    ledger.commit.rejects(new BatchNotWrittenError(new Error('deadlock')));

    const report = await useCase.execute(7, 100, 1000);

    expect(queue.compensate.calledOnceWithExactly(batch)).to.equal(true);
    expect(ledger.settle.called).to.equal(false);
    expect(queue.acknowledge.called).to.equal(false);
    expect(report?.settlement).to.equal('compensated');
  });

  it('when the commit outcome is unknown and it had landed, then the batch is acknowledged, never compensated', async () => {
    const { queue, ledger, useCase } = fakes();
    ledger.commit.rejects(new BatchOutcomeUnknownError(new Error('Connection terminated')));
    ledger.settle.resolves({ kind: 'committed', outcomes: recordedAsDecided });

    const report = await useCase.execute(7, 100, 1000);

    expect(ledger.settle.calledOnceWithExactly(batch)).to.equal(true);
    expect(queue.acknowledge.calledOnce).to.equal(true);
    expect(queue.compensate.called).to.equal(false);
    expect(report?.settlement).to.equal('committed');
  });

  it('when the commit outcome is unknown and settling fenced it off, then Redis is compensated', async () => {
    const { queue, ledger, useCase } = fakes();
    ledger.commit.rejects(new BatchOutcomeUnknownError(new Error('Connection terminated')));
    ledger.settle.resolves({ kind: 'abandoned' });

    const report = await useCase.execute(7, 100, 1000);

    expect(queue.compensate.calledOnce).to.equal(true);
    expect(report?.settlement).to.equal('compensated');
  });

  it('when an unexpected error hits the commit and PostgreSQL cannot settle it, then the batch is left leased, untouched', async () => {
    const { queue, ledger, useCase } = fakes();
    ledger.commit.rejects(new TypeError('boom'));
    ledger.settle.rejects(new Error('ECONNREFUSED'));

    const report = await useCase.execute(7, 100, 1000);

    expect(queue.compensate.called).to.equal(false);
    expect(queue.acknowledge.called).to.equal(false);
    expect(report?.settlement).to.equal('leased');
    expect(report?.error).to.be.instanceOf(TypeError);
  });

  it('when Redis fails while acknowledging, then the batch is reported leased so recovery can finish it', async () => {
    const { queue, ledger, useCase } = fakes();
    ledger.commit.resolves({ kind: 'committed', outcomes: recordedAsDecided });
    queue.acknowledge.rejects(new Error('Connection is closed'));

    expect((await useCase.execute(7, 100, 1000))?.settlement).to.equal('leased');
  });

  it('when a replayed batch was abandoned before, then it is compensated', async () => {
    const { queue, ledger, useCase } = fakes();
    ledger.commit.resolves({ kind: 'abandoned' });

    expect((await useCase.execute(7, 100, 1000))?.settlement).to.equal('compensated');
    expect(queue.compensate.calledOnce).to.equal(true);
  });

  it('when Redis lost its data after the batch was taken and PostgreSQL holds it, then the gate is synced', async () => {
    const { queue, ledger, useCase, onGateRebuilt } = fakes();
    ledger.commit.resolves({ kind: 'committed', outcomes: recordedAsDecided });
    queue.acknowledge.resolves('gateRebuilt');

    const report = await useCase.execute(7, 100, 1000);

    expect(onGateRebuilt.calledOnceWithExactly(7)).to.equal(true);
    expect(report?.settlement).to.equal('committed');
  });

  it('when Redis lost its data and PostgreSQL does not hold the batch, then it is reported lost and the gate synced', async () => {
    const { queue, ledger, useCase, onGateRebuilt } = fakes();
    ledger.commit.rejects(new BatchNotWrittenError(new Error('down')));
    queue.compensate.resolves('gateRebuilt');

    const report = await useCase.execute(7, 100, 1000);

    expect(onGateRebuilt.calledOnce).to.equal(true);
    expect(report?.settlement).to.equal('lost');
  });

  describe('two lanes holding batches of one coupon', () => {
    const later: DecidedBatch = { ...batch, batchId: 'b-2' };
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    function deferred<T>() {
      let resolve: (value: T) => void = () => undefined;
      let reject: (err: unknown) => void = () => undefined;
      const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
      return { promise, resolve, reject };
    }

    it('when the earlier-taken batch commits slowly, then the later one commits only after it', async () => {
      const { queue, ledger, useCase } = fakes();
      queue.take.onFirstCall().resolves(batch).onSecondCall().resolves(later);
      const first = deferred<{ kind: 'committed'; outcomes: typeof recordedAsDecided }>();
      ledger.commit.withArgs(batch).returns(first.promise);
      ledger.commit.withArgs(later).resolves({ kind: 'committed', outcomes: recordedAsDecided });

      const runs = [useCase.execute(7, 100, 1000), useCase.execute(7, 100, 1000)];
      await settle();
      expect(
        ledger.commit.getCalls().map((c) => (c.args[0] as DecidedBatch).batchId),
      ).to.deep.equal(['b-1']);

      first.resolve({ kind: 'committed', outcomes: recordedAsDecided });
      const reports = await Promise.all(runs);

      expect(
        ledger.commit.getCalls().map((c) => (c.args[0] as DecidedBatch).batchId),
      ).to.deep.equal(['b-1', 'b-2']);
      expect(reports.map((r) => r?.settlement)).to.deep.equal(['committed', 'committed']);
    });

    it('when the earlier-taken batch is not written, then it is compensated and the later one still commits', async () => {
      const { queue, ledger, useCase } = fakes();
      queue.take.onFirstCall().resolves(batch).onSecondCall().resolves(later);
      const first = deferred<never>();
      ledger.commit.withArgs(batch).returns(first.promise);
      ledger.commit.withArgs(later).resolves({ kind: 'committed', outcomes: recordedAsDecided });

      const runs = [useCase.execute(7, 100, 1000), useCase.execute(7, 100, 1000)];
      await settle();
      first.reject(new BatchNotWrittenError(new Error('down')));
      const reports = await Promise.all(runs);

      expect(reports.map((r) => r?.settlement)).to.deep.equal(['compensated', 'committed']);
      expect(queue.compensate.calledOnceWithExactly(batch)).to.equal(true);
      expect(queue.acknowledge.calledOnceWithExactly(later, [])).to.equal(true);
    });

    it('when the two batches are of different coupons, then neither waits for the other', async () => {
      const { queue, ledger, useCase } = fakes();
      const otherCoupon: DecidedBatch = { ...batch, batchId: 'b-9', couponId: 9 };
      queue.take.onFirstCall().resolves(batch).onSecondCall().resolves(otherCoupon);
      const first = deferred<{ kind: 'committed'; outcomes: typeof recordedAsDecided }>();
      ledger.commit.withArgs(batch).returns(first.promise);
      ledger.commit.withArgs(otherCoupon).resolves({ kind: 'committed', outcomes: new Map() });

      const runs = [useCase.execute(7, 100, 1000), useCase.execute(9, 100, 1000)];
      await settle();

      expect(
        ledger.commit.getCalls().map((c) => (c.args[0] as DecidedBatch).batchId),
      ).to.deep.equal(['b-1', 'b-9']);
      first.resolve({ kind: 'committed', outcomes: recordedAsDecided });
      await Promise.all(runs);
    });
  });
});
