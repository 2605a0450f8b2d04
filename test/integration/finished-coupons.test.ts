import { expect } from 'chai';
import sinon from 'sinon';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { expectNoStrayExpiry } from '../support/state.js';

const byNumber = (a: number, b: number) => a - b;

describe("the worker's rounds over many coupons", () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    sinon.restore();
    await h.cleanup();
  });

  const loaded = async () =>
    (await h.container.redis.smembers(h.container.keys.activeCoupons())).map(Number).sort(byNumber);
  const close = async (couponId: number) => {
    const res = await http(h.baseUrl, 'POST', `/coupons/${couponId}/close`, { admin: true });
    expect(res.status).to.equal(200);
  };

  it('when many coupons are loaded and one has queued requests, then a pass asks that one alone for a batch', async () => {
    const idle = [await createCoupon(h.baseUrl), await createCoupon(h.baseUrl)];
    const busy = await createCoupon(h.baseUrl);
    const accepted = await requestIssue(h.baseUrl, busy, 'ann');
    const take = sinon.spy(h.container.queue, 'take');

    expect(await h.container.queue.activeCoupons()).to.deep.equal([busy]);
    expect(await drainAll(h.container)).to.equal(1);

    expect(take.args.map((a) => a[0])).to.deep.equal([busy]);
    expect(await h.container.queue.activeCoupons()).to.deep.equal([]);
    // Idle open coupons stay loaded: a request may come at any moment.
    expect(await loaded()).to.deep.equal([...idle, busy].sort(byNumber));
    const status = await http(h.baseUrl, 'GET', `/issue-requests/${accepted.body.requestId}`);
    expect(status.body.status).to.equal('ISSUED');
  });

  it('when coupons are closed or past their end, then each leaves the rounds once nothing of it is queued or in flight', async () => {
    const open = await createCoupon(h.baseUrl);
    const closedEmpty = await createCoupon(h.baseUrl);
    const closedQueued = await createCoupon(h.baseUrl);
    const inFlight = await createCoupon(h.baseUrl);
    const ending = await createCoupon(h.baseUrl, {
      name: 'Short',
      totalQuantity: 10,
      endsAt: new Date(Date.now() + 1_000).toISOString(),
    });
    const waiting = await requestIssue(h.baseUrl, closedQueued, 'bob');
    await requestIssue(h.baseUrl, inFlight, 'cy');
    const batch = await h.container.queue.take(inFlight, 10, 60_000, 'held-batch');
    expect(batch?.items).to.have.length(1);
    await close(closedEmpty);
    await close(closedQueued);
    await close(inFlight);
    // Past the end by Redis's clock (the gate's own test); the wait is for the clock, not for work.
    await new Promise((resolve) => setTimeout(resolve, 1_100));

    await h.container.worker.maintain();

    expect(await loaded()).to.deep.equal([open, closedQueued, inFlight].sort(byNumber));
    expect(
      h.logged.find((l) => l.message === "finished coupons left the worker's rounds")?.meta.coupons,
    ).to.deep.equal([closedEmpty, ending].sort(byNumber));

    // The batch in flight is given back (as when its commit fails), then everything is decided.
    await h.container.queue.compensate(batch!);
    await drainAll(h.container);
    await h.container.worker.maintain();

    expect(await loaded()).to.deep.equal([open]);
    const decided = await http(h.baseUrl, 'GET', `/issue-requests/${waiting.body.requestId}`);
    expect([decided.body.status, decided.body.reason]).to.deep.equal(['REJECTED', 'EVENT_CLOSED']);
    await expectNoStrayExpiry(h.container);
  });

  it('when a coupon has left the rounds, then its requests are still refused and nothing is queued for it', async () => {
    const couponId = await createCoupon(h.baseUrl);
    await close(couponId);
    await h.container.worker.maintain();
    expect(await loaded()).to.deep.equal([]);

    const refused = await requestIssue(h.baseUrl, couponId, 'dee');

    expect([refused.status, refused.body.code]).to.deep.equal([409, 'EVENT_NOT_OPEN']);
    expect(await h.container.redis.zcard(h.container.keys.coupon(couponId).queue)).to.equal(0);
    expect(await loaded()).to.deep.equal([]);
  });

  it('when a gate is loaded while any separate SADD to the rounds would fail, then the coupon is in the rounds anyway and its requests are decided', async () => {
    // The fault an earlier design could hit between loading the gate and adding it to the rounds.
    sinon.stub(h.container.redis, 'sadd').rejects(new Error('connection lost before SADD'));
    const couponId = await createCoupon(h.baseUrl, { name: 'One step', totalQuantity: 2 });

    expect(await loaded()).to.deep.equal([couponId]);
    const accepted = await requestIssue(h.baseUrl, couponId, 'eve');
    expect(accepted.status).to.equal(202);
    await drainAll(h.container);

    const status = await http(h.baseUrl, 'GET', `/issue-requests/${accepted.body.requestId}`);
    expect(status.body.status).to.equal('ISSUED');
    await expectNoStrayExpiry(h.container);
  });

  it('when a live coupon goes missing from the rounds, then the worker puts it back within seconds, says so, and decides its waiting requests', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Stranded', totalQuantity: 3 });
    const ended = await createCoupon(h.baseUrl, { name: 'Closed', totalQuantity: 2 });
    await close(ended);
    const ids: string[] = [];
    for (const user of ['fay', 'gus', 'hal']) {
      const res = await requestIssue(h.baseUrl, couponId, user);
      expect(res.status).to.equal(202);
      ids.push(res.body.requestId);
    }
    // The worker's first chores (marking this Redis as seen) are done before the drift.
    await h.container.worker.maintain();
    // Drift: the rounds lost the coupon (and the closed one, which must stay out).
    await h.container.redis.srem(h.container.keys.activeCoupons(), couponId, ended);

    h.container.worker.start();
    let statuses: string[] = [];
    try {
      const deadline = Date.now() + 20_000;
      do {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const rows = await h.container.pool.query<{ status: string }>(
          'SELECT status FROM issue_requests WHERE coupon_id = $1',
          [couponId],
        );
        statuses = rows.rows.map((r) => r.status).sort();
      } while (statuses.length < ids.length && Date.now() < deadline);
    } finally {
      await h.container.worker.stop();
    }

    expect(statuses).to.deep.equal(['ISSUED', 'ISSUED', 'ISSUED']);
    expect(
      h.logged.find(
        (l) => l.message === "live coupons were missing from the worker's rounds: put back",
      )?.meta.coupons,
    ).to.deep.equal([couponId]);
    expect(await loaded()).to.deep.equal([couponId]);
    await expectNoStrayExpiry(h.container);
  });
});
