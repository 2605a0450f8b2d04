import { expect } from 'chai';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { couponState } from '../support/state.js';

interface RequestView {
  requestId: string;
  couponId: number;
  userId: string;
  status: string;
  reason: string | null;
  queuePosition: number | null;
  issueId: number | null;
  requestedAt: string;
  decidedAt: string | null;
}

describe('issuance pipeline (real Redis and PostgreSQL)', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.cleanup();
  });

  describe('POST /coupons', () => {
    it('when an operator opens an event, then it answers 201 with the coupon and stores it in both stores', async () => {
      const res = await http(h.baseUrl, 'POST', '/coupons', {
        admin: true,
        body: { name: '  Launch  ', totalQuantity: 5 },
      });

      expect(res.status).to.equal(201);
      const id = res.body.id as number;
      expect(res.headers.get('location')).to.equal(`/coupons/${id}`);
      expect(res.body).to.deep.equal({
        id,
        name: 'Launch',
        totalQuantity: 5,
        startsAt: null,
        endsAt: null,
        status: 'OPEN',
      });
      const state = await couponState(h.container, id);
      expect(state.total).to.equal(5);
      expect(state.issuedCount).to.equal(0);
      expect(state.redisStock).to.equal(5);
      expect(
        await h.container.redis.sismember(h.container.keys.activeCoupons(), String(id)),
      ).to.equal(1);
    });

    it('when the window starts later, then the coupon is SCHEDULED and requests get 409 EVENT_NOT_OPEN without queueing', async () => {
      const startsAt = new Date(Date.now() + 3_600_000).toISOString();
      const created = await http(h.baseUrl, 'POST', '/coupons', {
        admin: true,
        body: { name: 'Later', totalQuantity: 3, startsAt },
      });
      expect(created.status).to.equal(201);
      expect(created.body.status).to.equal('SCHEDULED');
      expect(created.body.startsAt).to.equal(startsAt);

      const res = await requestIssue(h.baseUrl, created.body.id as number, 'early-bird');

      expect(res.status).to.equal(409);
      expect(res.body.code).to.equal('EVENT_NOT_OPEN');
      const state = await couponState(h.container, created.body.id as number);
      expect(state.queued).to.equal(0);
      expect(state.pendingRecords).to.equal(0);
    });

    it('when the window has ended, then requests get 409 EVENT_NOT_OPEN', async () => {
      // The window must still be open when the event is created (a window already over is
      // refused), so it ends well after; the test then waits until it has ended.
      const endsAt = Date.now() + 1_500;
      const id = await createCoupon(h.baseUrl, {
        name: 'Short',
        totalQuantity: 3,
        endsAt: new Date(endsAt).toISOString(),
      });
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, endsAt - Date.now() + 50)));

      const res = await requestIssue(h.baseUrl, id, 'late-comer');

      expect(res.status).to.equal(409);
      expect(res.body.code).to.equal('EVENT_NOT_OPEN');
      expect((await couponState(h.container, id)).queued).to.equal(0);
    });
  });

  describe('requesting and polling', () => {
    it('when many requests reach one API process in the same moment, then their Redis commands leave in one pipeline and each still gets its own answer', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Pipelined', totalQuantity: 100 });
      const users = Array.from({ length: 40 }, (_, i) => `pipe-${i}`);
      // The gate's commands for one event-loop turn wait in ioredis's pipeline, not one write each.
      const before = h.container.redis.autoPipelineQueueSize;
      const pending = users.map((u, i) =>
        h.container.gate.accept(couponId, u, `pipe${String(i).padStart(6, '0')}`),
      );
      expect(h.container.redis.autoPipelineQueueSize - before).to.equal(users.length);
      const outcomes = await Promise.all(pending);

      expect(outcomes.map((o) => o.kind)).to.deep.equal(users.map(() => 'accepted'));
      const arrivals = outcomes.map((o) => (o.kind === 'accepted' ? o.arrival : ''));
      expect(new Set(arrivals).size).to.equal(users.length);
      const state = await couponState(h.container, couponId);
      expect(state.queued).to.equal(users.length);
      expect(state.pendingRecords).to.equal(users.length);
      // The worker's connection moves whole batches in single scripts: nothing to pipeline.
      expect(h.container.workerRedis.options.enableAutoPipelining).to.equal(false);
    });

    it('when users ask, then they queue in arrival order, a repeat gets the same request, and the worker decides them', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Two left', totalQuantity: 2 });

      const first = await requestIssue(h.baseUrl, couponId, 'ann');
      const second = await requestIssue(h.baseUrl, couponId, 'ben');
      const third = await requestIssue(h.baseUrl, couponId, 'cid');
      const repeat = await requestIssue(h.baseUrl, couponId, 'ann');

      expect(first.status).to.equal(202);
      expect(first.headers.get('location')).to.equal(`/issue-requests/${first.body.requestId}`);
      expect(first.body).to.deep.equal({
        requestId: first.body.requestId,
        couponId,
        userId: 'ann',
        status: 'PENDING',
      });
      expect(second.status).to.equal(202);
      // Two coupons, two requests ahead: the third can only be refused.
      expect(third.status).to.equal(409);
      expect(third.body.code).to.equal('SOLD_OUT');
      expect(repeat.status).to.equal(202);
      expect(repeat.body.requestId).to.equal(first.body.requestId);

      const pendingFirst = await http<RequestView>(
        h.baseUrl,
        'GET',
        `/issue-requests/${first.body.requestId}`,
      );
      const pendingSecond = await http<RequestView>(
        h.baseUrl,
        'GET',
        `/issue-requests/${second.body.requestId}`,
      );
      expect(pendingFirst.body).to.include({
        status: 'PENDING',
        queuePosition: 0,
        reason: null,
        issueId: null,
        decidedAt: null,
      });
      expect(pendingSecond.body).to.include({ status: 'PENDING', queuePosition: 1 });
      expect(Date.parse(pendingFirst.body.requestedAt)).to.be.at.most(
        Date.parse(pendingSecond.body.requestedAt),
      );
      expect((await couponState(h.container, couponId)).queued).to.equal(2);

      await drainAll(h.container);

      const done = await http<RequestView>(
        h.baseUrl,
        'GET',
        `/issue-requests/${first.body.requestId}`,
      );
      expect(done.status).to.equal(200);
      expect(done.body).to.include({
        requestId: first.body.requestId,
        couponId,
        userId: 'ann',
        status: 'ISSUED',
        reason: null,
        queuePosition: null,
      });
      expect(done.body.issueId).to.be.a('number');
      expect(Date.parse(done.body.decidedAt as string)).to.be.at.least(
        Date.parse(done.body.requestedAt),
      );

      const state = await couponState(h.container, couponId);
      expect(state.issuedRows.map((r) => r.userId)).to.deep.equal(['ann', 'ben']);
      expect(state.issuedCount).to.equal(2);
      expect(state.requestRows).to.have.length(2);
      expect(state.redisStock).to.equal(0);
      expect(state.redisIssued).to.deep.equal(['ann', 'ben']);
      // Nothing is left pending or in flight in Redis once everything is final.
      expect([
        state.queued,
        state.inflight,
        state.pendingRecords,
        state.leasedBatches,
      ]).to.deep.equal([0, 0, 0, 0]);

      const coupon = await http(h.baseUrl, 'GET', `/coupons/${couponId}`);
      expect(coupon.body).to.include({
        id: couponId,
        totalQuantity: 2,
        issuedCount: 2,
        remaining: 0,
        status: 'SOLD_OUT',
      });

      const again = await requestIssue(h.baseUrl, couponId, 'ann');
      expect(again.status).to.equal(409);
      expect(again.body.code).to.equal('ALREADY_ISSUED');
    });

    it('when a request is final, then its status comes from PostgreSQL even after Redis lost every key', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Durable', totalQuantity: 1 });
      const accepted = await requestIssue(h.baseUrl, couponId, 'dora');
      await drainAll(h.container);
      const k = h.container.keys.coupon(couponId);
      await h.container.redis.del(...Object.values(k));

      const res = await http<RequestView>(
        h.baseUrl,
        'GET',
        `/issue-requests/${accepted.body.requestId}`,
      );

      expect(res.status).to.equal(200);
      expect(res.body.status).to.equal('ISSUED');
    });

    it('when Redis lost a coupon, then the next request rebuilds its stock and issued set from PostgreSQL', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Rebuilt', totalQuantity: 3 });
      await requestIssue(h.baseUrl, couponId, 'eve');
      await drainAll(h.container);
      await h.container.redis.del(...Object.values(h.container.keys.coupon(couponId)));
      await h.container.redis.srem(h.container.keys.activeCoupons(), String(couponId));

      const again = await requestIssue(h.baseUrl, couponId, 'eve');
      const fresh = await requestIssue(h.baseUrl, couponId, 'fay');

      expect(again.status).to.equal(409);
      expect(again.body.code).to.equal('ALREADY_ISSUED');
      expect(fresh.status).to.equal(202);
      const state = await couponState(h.container, couponId);
      expect(state.redisStock).to.equal(2);
      expect(state.redisIssued).to.deep.equal(['eve']);
      expect(
        await h.container.redis.sismember(h.container.keys.activeCoupons(), String(couponId)),
      ).to.equal(1);
    });

    it('when the coupon or the request does not exist, then 404 with a stable code', async () => {
      const coupon = await http(h.baseUrl, 'GET', '/coupons/999999');
      const issue = await requestIssue(h.baseUrl, 999999, 'ghost');
      const request = await http(h.baseUrl, 'GET', '/issue-requests/999999-abc-AAAAAAAAAA');

      expect([coupon.status, coupon.body.code]).to.deep.equal([404, 'COUPON_NOT_FOUND']);
      expect([issue.status, issue.body.code]).to.deep.equal([404, 'COUPON_NOT_FOUND']);
      expect([request.status, request.body.code]).to.deep.equal([404, 'REQUEST_NOT_FOUND']);
      expect(coupon.contentType).to.match(/^application\/problem\+json/);
      expect(await h.container.redis.exists(h.container.keys.coupon(999999).meta)).to.equal(0);
    });
  });

  describe('closing an event', () => {
    it('when an operator closes an event, then waiting requests are rejected EVENT_CLOSED and new ones are refused', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Closing', totalQuantity: 10 });
      const waiting = await requestIssue(h.baseUrl, couponId, 'wendy');

      const closed = await http(h.baseUrl, 'POST', `/coupons/${couponId}/close`, { admin: true });
      const again = await http(h.baseUrl, 'POST', `/coupons/${couponId}/close`, { admin: true });
      const refused = await requestIssue(h.baseUrl, couponId, 'vince');
      await drainAll(h.container);

      expect(closed.status).to.equal(200);
      expect(closed.body).to.include({ id: couponId, status: 'CLOSED', issuedCount: 0 });
      expect(again.status).to.equal(200);
      expect([refused.status, refused.body.code]).to.deep.equal([409, 'EVENT_NOT_OPEN']);
      const final = await http<RequestView>(
        h.baseUrl,
        'GET',
        `/issue-requests/${waiting.body.requestId}`,
      );
      expect(final.body).to.include({ status: 'REJECTED', reason: 'EVENT_CLOSED', issueId: null });
      const state = await couponState(h.container, couponId);
      expect(state.requestRows).to.deep.equal([
        {
          requestId: waiting.body.requestId,
          userId: 'wendy',
          status: 'REJECTED',
          reason: 'EVENT_CLOSED',
        },
      ]);
      expect(state.redisStock).to.equal(10);
    });

    it('when Redis lost a closed event, then requests are refused from PostgreSQL and no gate comes back', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Closed for good', totalQuantity: 3 });
      await http(h.baseUrl, 'POST', `/coupons/${couponId}/close`, { admin: true });
      await h.container.redis.del(...Object.values(h.container.keys.coupon(couponId)));

      const res = await requestIssue(h.baseUrl, couponId, 'xena');

      expect([res.status, res.body.code]).to.deep.equal([409, 'EVENT_NOT_OPEN']);
      // A closed event is decided for good: its keys stay gone (retirement relies on it).
      expect(await h.container.redis.exists(h.container.keys.couponKeyList(couponId))).to.equal(0);
    });

    it('when the closer is not an operator or the coupon is unknown, then 401 or 404 and nothing closes', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Still open', totalQuantity: 3 });

      const anonymous = await http(h.baseUrl, 'POST', `/coupons/${couponId}/close`);
      const unknown = await http(h.baseUrl, 'POST', '/coupons/987654/close', { admin: true });

      expect([anonymous.status, anonymous.body.code]).to.deep.equal([401, 'UNAUTHORIZED']);
      expect([unknown.status, unknown.body.code]).to.deep.equal([404, 'COUPON_NOT_FOUND']);
      expect((await http(h.baseUrl, 'GET', `/coupons/${couponId}`)).body.status).to.equal('OPEN');
      expect(
        await h.container.redis.hget(h.container.keys.coupon(couponId).meta, 'closed'),
      ).to.equal('0');
    });
  });

  describe('the cron-driven worker', () => {
    it('when the worker runs on its schedule, then pending requests become final without any manual drain', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Cron', totalQuantity: 1 });
      const winner = await requestIssue(h.baseUrl, couponId, 'gus');
      h.container.worker.start();
      try {
        const deadline = Date.now() + 10_000;
        let status = 'PENDING';
        while (status === 'PENDING' && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          status = (await http(h.baseUrl, 'GET', `/issue-requests/${winner.body.requestId}`)).body
            .status as string;
        }
        expect(status).to.equal('ISSUED');
      } finally {
        await h.container.worker.stop();
      }
      expect((await couponState(h.container, couponId)).issuedCount).to.equal(1);
    });
  });
});
