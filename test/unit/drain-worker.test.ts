import { expect } from 'chai';
import sinon from 'sinon';
import type { IssueQueue } from '../../src/domain/ports.js';
import type {
  BatchReport,
  ProcessNextBatch,
} from '../../src/domain/use-cases/process-next-batch.js';
import { DrainWorker } from '../../src/scheduler/drain-worker.js';

const report = (settlement: BatchReport['settlement'], size = 10): BatchReport => ({
  couponId: 1,
  batchId: 'b',
  size,
  outcomes: { ISSUED: size, SOLD_OUT: 0, ALREADY_ISSUED: 0, EVENT_CLOSED: 0 },
  corrections: 0,
  settlement,
});

function setup(execute: sinon.SinonStub) {
  const queue = { activeCoupons: sinon.stub().resolves([1, 2]) } as unknown as IssueQueue;
  const logger = { info: sinon.spy(), warn: sinon.spy(), error: sinon.spy() };
  const worker = new DrainWorker({
    queue,
    processNextBatch: { execute } as unknown as ProcessNextBatch,
    logger,
    settings: { batchSize: 10, batchCron: '* * * * * *', batchIntervalMs: 5, leaseMs: 1000 },
  });
  return { worker, logger };
}

describe('the drain worker', () => {
  afterEach(() => sinon.restore());

  it('when two coupons have work, then one pass takes a batch from each and logs one line per batch', async () => {
    const execute = sinon.stub().resolves(report('committed'));
    const { worker, logger } = setup(execute);

    expect(await worker.drainOnce()).to.equal(20);
    expect(execute.args.map((a) => a[0])).to.deep.equal([1, 2]);
    expect(logger.info.callCount).to.equal(2);
    expect(logger.info.firstCall.args[1]).to.include({
      couponId: 1,
      size: 10,
      issued: 10,
      settlement: 'committed',
    });
    expect(logger.info.firstCall.args[1]).to.have.property('durationMs').that.is.a('number');
  });

  it('when a batch is compensated, then the pass stops so the worker backs off', async () => {
    const execute = sinon.stub().resolves(report('compensated'));
    const { worker, logger } = setup(execute);

    const error = await worker.drainOnce().catch((e: unknown) => e);

    expect(error).to.be.instanceOf(Error);
    expect(execute.callCount).to.equal(1);
    expect(logger.warn.calledWithMatch('batch not committed')).to.equal(true);
  });

  it('when ticks arrive while a drain is running, then they extend it instead of starting another', async () => {
    let running = 0;
    let maxRunning = 0;
    const execute = sinon.stub().callsFake(async () => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 5));
      running -= 1;
      return null;
    });
    const { worker } = setup(execute);

    const first = worker.tick();
    const second = worker.tick();
    const third = worker.tick();
    await new Promise((r) => setTimeout(r, 50));
    await worker.stop();
    await Promise.all([first, second, third]);

    expect(execute.callCount).to.be.greaterThan(2);
    expect(maxRunning).to.equal(1);
    expect(second).to.equal(first);
    expect(third).to.equal(first);
  });

  it('when the queue stays empty, then the worker polls at the interval until the tick ends', async () => {
    const clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const execute = sinon.stub().resolves(null);
    const { worker } = setup(execute);

    const loop = worker.tick();
    await clock.tickAsync(1_000);
    await loop;

    // One pass per coupon every 5 ms over the 1 s tick: far more than one batch per tick.
    expect(execute.callCount).to.be.within(2 * 150, 2 * 201);
  });
});
