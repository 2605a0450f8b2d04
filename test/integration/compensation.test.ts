import { expect } from 'chai';
import sinon from 'sinon';
import { BatchOutcomeUnknownError, type DecidedBatch } from '../../src/domain/ports.js';
import { BatchNotCommitted } from '../../src/scheduler/drain-worker.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { couponState, expectNoStrayExpiry } from '../support/state.js';

async function queueScores(h: Harness, couponId: number): Promise<string[]> {
  return h.container.redis.zrange(h.container.keys.coupon(couponId).queue, '0', '-1', 'WITHSCORES');
}

async function drainExpectingFailure(h: Harness): Promise<BatchNotCommitted> {
  try {
    await h.container.worker.drainOnce();
  } catch (err) {
    if (err instanceof BatchNotCommitted) return err;
    throw err;
  }
  throw new Error('the batch was expected to fail');
}

describe('compensation when PostgreSQL fails during a batch', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    sinon.restore();
    await h.cleanup();
  });

  it('when the batch transaction fails midway, then Redis is restored, the requests keep their places, and they are issued exactly once later', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Flaky DB', totalQuantity: 3 });
    const ids: string[] = [];
    for (const user of ['u1', 'u2', 'u3'])
      ids.push((await requestIssue(h.baseUrl, couponId, user)).body.requestId);
    const before = await couponState(h.container, couponId);
    const scoresBefore = await queueScores(h, couponId);
    // A real failure inside the transaction, after issued_coupons and coupons were already written.
    await h.container.pool.query(
      'ALTER TABLE issue_requests ADD CONSTRAINT reject_everything CHECK (false) NOT VALID',
    );

    const failure = await drainExpectingFailure(h);

    expect(failure.report.settlement).to.equal('compensated');
    const during = await couponState(h.container, couponId);
    expect(during.redisStock).to.equal(before.redisStock);
    expect(during.redisIssued).to.deep.equal([]);
    expect(await queueScores(h, couponId)).to.deep.equal(scoresBefore);
    expect([during.inflight, during.leasedBatches, during.pendingRecords]).to.deep.equal([0, 0, 3]);
    expect([during.issuedRows.length, during.requestRows.length, during.issuedCount]).to.deep.equal(
      [0, 0, 0],
    );
    await expectNoStrayExpiry(h.container);
    const waiting = await Promise.all(
      ids.map((id) => http(h.baseUrl, 'GET', `/issue-requests/${id}`)),
    );
    expect(waiting.map((w) => [w.body.status, w.body.queuePosition])).to.deep.equal([
      ['PENDING', 0],
      ['PENDING', 1],
      ['PENDING', 2],
    ]);

    await h.container.pool.query('ALTER TABLE issue_requests DROP CONSTRAINT reject_everything');
    await drainAll(h.container);

    const after = await couponState(h.container, couponId);
    expect(after.issuedRows.map((r) => r.userId)).to.deep.equal(['u1', 'u2', 'u3']);
    expect(after.issuedCount).to.equal(3);
    expect(after.redisStock).to.equal(0);
    expect(after.redisIssued).to.deep.equal(['u1', 'u2', 'u3']);
    expect([after.queued, after.inflight, after.pendingRecords, after.leasedBatches]).to.deep.equal(
      [0, 0, 0, 0],
    );
  });

  it('when the connection drops during COMMIT but the commit landed, then PostgreSQL is asked and nothing is compensated', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Ambiguous', totalQuantity: 2 });
    await requestIssue(h.baseUrl, couponId, 'a1');
    await requestIssue(h.baseUrl, couponId, 'a2');
    const ledger = h.container.ledger;
    const realCommit = ledger.commit.bind(ledger);
    const commit = sinon.stub(ledger, 'commit').callsFake(async (batch: DecidedBatch) => {
      await realCommit(batch);
      throw new BatchOutcomeUnknownError(new Error('Connection terminated unexpectedly'));
    });
    const settle = sinon.spy(ledger, 'settle');
    const compensate = sinon.spy(h.container.queue, 'compensate');

    await h.container.worker.drainOnce();

    expect(commit.callCount).to.equal(1);
    expect(settle.callCount).to.equal(1);
    expect(compensate.callCount).to.equal(0);
    const state = await couponState(h.container, couponId);
    expect(state.issuedRows.map((r) => r.userId)).to.deep.equal(['a1', 'a2']);
    expect(state.redisStock).to.equal(0);
    expect(state.redisIssued).to.deep.equal(['a1', 'a2']);
    expect([state.queued, state.inflight, state.pendingRecords, state.leasedBatches]).to.deep.equal(
      [0, 0, 0, 0],
    );
  });

  it('when the connection drops during COMMIT and the commit did not land, then the batch is fenced off, compensated, and decided again', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Lost commit', totalQuantity: 1 });
    const accepted = await requestIssue(h.baseUrl, couponId, 'b1');
    const ledger = h.container.ledger;
    const first = sinon.stub(ledger, 'commit');
    first
      .onFirstCall()
      .rejects(new BatchOutcomeUnknownError(new Error('Connection terminated unexpectedly')));
    first.callThrough();

    await drainExpectingFailure(h);

    const fenced = await h.container.pool.query<{ state: string }>(
      'SELECT state FROM worker_batches',
    );
    expect(fenced.rows.map((r) => r.state)).to.deep.equal(['ABANDONED']);
    const during = await couponState(h.container, couponId);
    expect([during.redisStock, during.queued, during.issuedRows.length]).to.deep.equal([1, 1, 0]);
    await expectNoStrayExpiry(h.container);

    await drainAll(h.container);

    const res = await http(h.baseUrl, 'GET', `/issue-requests/${accepted.body.requestId}`);
    expect(res.body.status).to.equal('ISSUED');
    const after = await couponState(h.container, couponId);
    expect(after.issuedRows).to.have.length(1);
    expect(after.redisStock).to.equal(0);
  });

  it('when PostgreSQL cannot be reached even to settle, then the batch stays leased in Redis with everything needed to recover it', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Unreachable', totalQuantity: 2 });
    await requestIssue(h.baseUrl, couponId, 'c1');
    sinon
      .stub(h.container.ledger, 'commit')
      .rejects(new BatchOutcomeUnknownError(new Error('ECONNRESET')));
    sinon
      .stub(h.container.ledger, 'settle')
      .rejects(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
    const compensate = sinon.spy(h.container.queue, 'compensate');

    await drainExpectingFailure(h);

    expect(compensate.callCount).to.equal(0);
    const state = await couponState(h.container, couponId);
    expect([state.inflight, state.leasedBatches, state.pendingRecords, state.queued]).to.deep.equal(
      [1, 1, 1, 0],
    );
    const k = h.container.keys.coupon(couponId);
    const [batchId] = await h.container.redis.zrange(k.leases, '0', '-1');
    const recorded = JSON.parse(
      (await h.container.redis.hget(k.batches, batchId as string)) as string,
    ) as { i: unknown[] };
    expect(recorded.i[0]).to.equal('c1');
  });
});
