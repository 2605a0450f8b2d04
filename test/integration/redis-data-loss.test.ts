import { expect } from 'chai';
import sinon from 'sinon';
import { BatchNotWrittenError, type DecidedBatch } from '../../src/domain/ports.js';
import { deleteKeys, drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { couponState, expectNoStrayExpiry } from '../support/state.js';

/** What a Redis restart without persistence does to this deployment: every key is gone. */
function loseRedisData(h: Harness): Promise<void> {
  return deleteKeys(h.container, h.prefix);
}

describe('Redis losing its data', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    sinon.restore();
    await h.cleanup();
  });

  it('when Redis loses its data, then waiting requests are answered REQUEST_LOST, final ones stand, and the gate is rebuilt from PostgreSQL', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Amnesia', totalQuantity: 3 });
    const issued = await requestIssue(h.baseUrl, couponId, 'kept');
    await drainAll(h.container);
    const waiting = await requestIssue(h.baseUrl, couponId, 'forgotten');

    await loseRedisData(h);

    const lost = await http(h.baseUrl, 'GET', `/issue-requests/${waiting.body.requestId}`);
    expect([lost.status, lost.body.code]).to.deep.equal([410, 'REQUEST_LOST']);
    expect(lost.contentType).to.match(/^application\/problem\+json/);
    const final = await http(h.baseUrl, 'GET', `/issue-requests/${issued.body.requestId}`);
    expect([final.status, final.body.status]).to.deep.equal([200, 'ISSUED']);
    const again = await requestIssue(h.baseUrl, couponId, 'kept');
    expect([again.status, again.body.code]).to.deep.equal([409, 'ALREADY_ISSUED']);
    const retry = await requestIssue(h.baseUrl, couponId, 'forgotten');
    expect(retry.status).to.equal(202);
    expect(retry.body.requestId).to.not.equal(waiting.body.requestId);
    // Requests that never existed are still just unknown.
    const forged = await http(h.baseUrl, 'GET', `/issue-requests/${couponId}-1-AAAAAAAAAA`);
    expect(forged.status).to.equal(404);

    await drainAll(h.container);
    const state = await couponState(h.container, couponId);
    expect(state.issuedRows.map((r) => r.userId)).to.deep.equal(['kept', 'forgotten']);
    expect(state.redisStock).to.equal(1);
    expect(state.redisIssued).to.deep.equal(['forgotten', 'kept']);
    await expectNoStrayExpiry(h.container);
  });

  it('when the gate is reloaded from PostgreSQL after Redis lost its data, then its issued set keeps no expiry', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Reloaded', totalQuantity: 3 });
    await requestIssue(h.baseUrl, couponId, 'early');
    await drainAll(h.container);
    await loseRedisData(h);

    // The first request after the loss loads the gate from PostgreSQL.
    const again = await requestIssue(h.baseUrl, couponId, 'early');

    expect([again.status, again.body.code]).to.deep.equal([409, 'ALREADY_ISSUED']);
    const k = h.container.keys.coupon(couponId);
    expect(await h.container.redis.smembers(k.issued)).to.deep.equal(['early']);
    expect(await h.container.redis.pttl(k.issued)).to.equal(-1);
    await expectNoStrayExpiry(h.container);
  });

  it('when Redis loses its data between a batch commit and its acknowledgement, then the worker syncs the gate so no stock is handed out twice', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Mid-batch', totalQuantity: 2 });
    await requestIssue(h.baseUrl, couponId, 'p1');
    await requestIssue(h.baseUrl, couponId, 'p2');
    const ledger = h.container.ledger;
    const realCommit = ledger.commit.bind(ledger);
    sinon.stub(ledger, 'commit').callsFake(async (batch: DecidedBatch) => {
      const result = await realCommit(batch);
      await loseRedisData(h);
      // The next request reloads the gate from PostgreSQL, which already holds the batch.
      await requestIssue(h.baseUrl, couponId, 'p3');
      return result;
    });

    await h.container.worker.drainOnce();

    const state = await couponState(h.container, couponId);
    expect(state.issuedRows.map((r) => r.userId)).to.deep.equal(['p1', 'p2']);
    expect(state.redisStock).to.equal(0);
    expect(state.redisIssued).to.deep.equal(['p1', 'p2']);
    const consistency = await http(h.baseUrl, 'GET', `/coupons/${couponId}/consistency`, {
      admin: true,
    });
    expect(consistency.body.consistent).to.equal(true);
    await expectNoStrayExpiry(h.container);
  });

  it('when a batch in flight is lost with Redis and was never committed, then its requests are answered REQUEST_LOST and nothing is issued for them', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Lost batch', totalQuantity: 2 });
    const waiting = await requestIssue(h.baseUrl, couponId, 'q1');
    sinon.stub(h.container.ledger, 'commit').callsFake(async () => {
      await loseRedisData(h);
      await requestIssue(h.baseUrl, couponId, 'q2');
      throw new BatchNotWrittenError(new Error('down'));
    });

    await h.container.worker.drainOnce();

    const res = await http(h.baseUrl, 'GET', `/issue-requests/${waiting.body.requestId}`);
    expect([res.status, res.body.code]).to.deep.equal([410, 'REQUEST_LOST']);
    expect(h.logged.some((l) => l.message === 'batch lost with Redis data')).to.equal(true);
    const state = await couponState(h.container, couponId);
    expect(state.issuedRows).to.deep.equal([]);
    expect(state.redisStock).to.equal(2);
    await expectNoStrayExpiry(h.container);
  });

  it('when the worker finds the Redis marker gone, then it rebuilds every live coupon gate before any request arrives', async () => {
    const live = await createCoupon(h.baseUrl, { name: 'Live', totalQuantity: 4 });
    const closed = await createCoupon(h.baseUrl, { name: 'Closed', totalQuantity: 4 });
    await http(h.baseUrl, 'POST', `/coupons/${closed}/close`, { admin: true });
    await requestIssue(h.baseUrl, live, 'w1');
    await drainAll(h.container);
    await h.container.worker.maintain();

    await loseRedisData(h);
    await h.container.worker.maintain();

    expect(
      h.logged.some(
        (l) => l.message === 'Redis lost its data: rebuilding coupon gates from PostgreSQL',
      ),
    ).to.equal(true);
    const state = await couponState(h.container, live);
    expect(state.redisStock).to.equal(3);
    expect(state.redisIssued).to.deep.equal(['w1']);
    expect(
      await h.container.redis.sismember(h.container.keys.activeCoupons(), String(live)),
    ).to.equal(1);
    expect(await h.container.redis.exists(h.container.keys.coupon(closed).meta)).to.equal(0);
    await expectNoStrayExpiry(h.container);
  });
});
