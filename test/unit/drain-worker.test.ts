import { expect } from 'chai';
import sinon from 'sinon';
import type { IssueQueue } from '../../src/domain/ports.js';
import type { BatchReport } from '../../src/domain/use-cases/batch-settler.js';
import {
  BatchFailedError,
  type ProcessNextBatch,
} from '../../src/domain/use-cases/process-next-batch.js';
import type { ReactivateLiveCoupons } from '../../src/domain/use-cases/reactivate-live-coupons.js';
import type { RecoverExpiredBatches } from '../../src/domain/use-cases/recover-expired-batches.js';
import type { RestoreGates } from '../../src/domain/use-cases/restore-gates.js';
import { BatchNotCommitted, DrainWorker } from '../../src/scheduler/drain-worker.js';

const report = (settlement: BatchReport['settlement'], size = 10): BatchReport => ({
  couponId: 1,
  batchId: 'b',
  size,
  outcomes: { ISSUED: size, SOLD_OUT: 0, ALREADY_ISSUED: 0, EVENT_CLOSED: 0 },
  corrections: 0,
  settlement,
});

function setup(execute: sinon.SinonStub, lanes = 1) {
  const queue = {
    activeCoupons: sinon.stub().resolves([1, 2]),
    retireFinished: sinon.stub().resolves([]),
  } as unknown as IssueQueue;
  const logger = { info: sinon.spy(), warn: sinon.spy(), error: sinon.spy() };
  const reactivate = sinon.stub().resolves([]);
  const worker = new DrainWorker({
    queue,
    processNextBatch: { execute } as unknown as ProcessNextBatch,
    recover: { execute: sinon.stub().resolves([]) } as unknown as RecoverExpiredBatches,
    restoreGates: { execute: sinon.stub().resolves(0) } as unknown as RestoreGates,
    reactivate: { execute: reactivate } as unknown as ReactivateLiveCoupons,
    logger,
    settings: {
      batchSize: 10,
      batchCron: '* * * * * *',
      batchIntervalMs: 5,
      leaseMs: 1000,
      lanes,
    },
  });
  return { worker, logger, reactivate };
}

/** A batch that takes 5 ms and returns `result`, counting how many run at once. */
function countingExecute(result: BatchReport | null) {
  const inFlight = { now: 0, max: 0 };
  const execute = sinon.stub().callsFake(async () => {
    inFlight.now += 1;
    inFlight.max = Math.max(inFlight.max, inFlight.now);
    await new Promise((r) => setTimeout(r, 5));
    inFlight.now -= 1;
    return result;
  });
  return { execute, inFlight };
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

    expect(error).to.be.instanceOf(BatchNotCommitted);
    expect(execute.callCount).to.equal(1);
    expect(logger.info.called).to.equal(false);
  });

  it('when ticks arrive while a drain is running, then they extend it instead of starting another', async () => {
    const clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { execute, inFlight } = countingExecute(null);
    const { worker } = setup(execute);

    const first = worker.tick();
    const second = worker.tick();
    const third = worker.tick();
    await clock.tickAsync(50);
    const stopped = worker.stop();
    await clock.tickAsync(50);
    await stopped;
    await Promise.all([first, second, third]);

    expect(execute.callCount).to.be.greaterThan(2);
    expect(inFlight.max).to.equal(1);
    expect(second).to.equal(first);
    expect(third).to.equal(first);
  });

  it('when BATCH_LANES is 2, then two batches are in flight at once, never more, however many ticks arrive', async () => {
    const clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { execute, inFlight } = countingExecute(report('committed'));
    const { worker } = setup(execute, 2);

    const ticks = [worker.tick(), worker.tick(), worker.tick()];
    await clock.tickAsync(50);
    const stopped = worker.stop();
    await clock.tickAsync(50);
    await stopped;
    await Promise.all(ticks);

    expect(inFlight.max).to.equal(2);
    expect(inFlight.now).to.equal(0);
  });

  it("when one lane fails while the other lane's batch is still committing, then that commit does not end the back-off", async () => {
    const clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let release: () => void = () => undefined;
    const slowCommit = new Promise<void>((r) => (release = r));
    let calls = 0;
    const execute = sinon.stub().callsFake(async () => {
      calls += 1;
      if (calls === 1) {
        await slowCommit;
        return report('committed');
      }
      if (calls === 2) return report('compensated');
      return null;
    });
    const { worker, logger } = setup(execute, 2);

    const loop = worker.tick();
    await clock.tickAsync(10);
    release();
    await clock.tickAsync(10);

    // The back-off's first wait is 250 ms: on the fake clock, 20 ms in, it still runs.
    expect(worker.state()).to.include({ state: 'backing-off', failures: 1 });
    expect(logger.info.calledWith('drain resumed')).to.equal(false);
    const stopped = worker.stop();
    await clock.tickAsync(1_000);
    await stopped;
    await loop;
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

  it('when PostgreSQL stays down for 20 s, then the worker backs off and logs one line per 5 s, then one when it resumes', async () => {
    const clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let down = true;
    const execute = sinon.stub().callsFake(async () => (down ? report('compensated') : null));
    const { worker, logger } = setup(execute);

    // Twenty cron ticks, one per second, while the database is down.
    for (let second = 0; second < 20; second += 1) {
      const loop = worker.tick();
      await clock.tickAsync(1_000);
      await loop;
    }
    const attemptsWhileDown = execute.callCount;
    const linesWhileDown = logger.warn.getCalls().filter((c) => c.args[0] === 'drain backing off');
    down = false;
    // The next try is at most 5 s away.
    for (let second = 0; second < 6; second += 1) {
      const loop = worker.tick();
      await clock.tickAsync(1_000);
      await loop;
    }

    // 250, 500, 1000, 2000, 4000, then every 5000 ms: about ten tries in 20 s, not thousands.
    expect(attemptsWhileDown).to.be.within(6, 12);
    expect(linesWhileDown.length).to.be.within(3, 5);
    expect(linesWhileDown[0]?.args[1]).to.include({ failures: 1, settlement: 'compensated' });
    expect(logger.info.calledWith('drain resumed')).to.equal(true);
    expect(worker.state().state).to.not.equal('backing-off');
  });

  it('when a batch fails with a bug, then the error line names the batch and holds the stack', async () => {
    const clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const execute = sinon
      .stub()
      .onFirstCall()
      .rejects(new BatchFailedError(1, 'b-bug', new TypeError('a bug')))
      .resolves(null);
    const { worker, logger } = setup(execute);

    const loop = worker.tick();
    await clock.tickAsync(1_000);
    await loop;

    sinon.assert.calledWithMatch(logger.error, 'drain failed', {
      couponId: 1,
      batchId: 'b-bug',
      error: sinon.match(/TypeError: a bug/),
    });
    expect(worker.state().state).to.not.equal('backing-off');
  });

  it('when PostgreSQL stays down with two lanes, then the tries stay as few as with one', async () => {
    const clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const execute = sinon.stub().resolves(report('compensated'));
    const { worker } = setup(execute, 2);

    for (let second = 0; second < 20; second += 1) {
      const loop = worker.tick();
      await clock.tickAsync(1_000);
      await loop;
    }

    // Both lanes fail together at first, then share one back-off schedule.
    expect(execute.callCount).to.be.within(6, 16);
    expect(worker.state().state).to.equal('backing-off');
  });

  it('when maintenance runs every second, then live coupons are put back in the rounds every 5 s (not every round) and a put-back is logged', async () => {
    const clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { worker, logger, reactivate } = setup(sinon.stub().resolves(null));
    reactivate.onFirstCall().resolves([]).onSecondCall().resolves([7]);

    for (let second = 0; second < 12; second += 1) {
      await worker.maintain();
      await clock.tickAsync(1_000);
    }

    // At 0 s, 5 s and 10 s.
    expect(reactivate.callCount).to.equal(3);
    sinon.assert.calledOnceWithExactly(
      logger.warn,
      "live coupons were missing from the worker's rounds: put back",
      { coupons: [7] },
    );
  });

  it('when batches come back partial, then the worker waits an interval between passes instead of committing every handful', async () => {
    const clock = sinon.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    // BATCH_SIZE is 10; each batch holds 3 requests.
    const execute = sinon.stub().resolves(report('committed', 3));
    const { worker } = setup(execute);

    const loop = worker.tick();
    await clock.tickAsync(1_000);
    await loop;

    // One pass (two coupons) per 5 ms interval over the 1 s tick.
    expect(execute.callCount).to.be.within(2 * 150, 2 * 201);
  });
});
