import { expect } from 'chai';
import { eventually } from '../support/eventually.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { scrape, valueOf, type Sample } from '../support/metrics.js';
import { couponState } from '../support/state.js';

const ACCEPT_ROUTE = '/coupons/:couponId/issue-requests';

/** What moved between two scrapes. */
function delta(
  before: Sample[],
  after: Sample[],
  name: string,
  labels: Record<string, string> = {},
) {
  return valueOf(after, name, labels) - valueOf(before, name, labels);
}

describe('metrics (GET /metrics, one process)', function () {
  this.timeout(60_000);

  describe('with the defaults', () => {
    let h: Harness;
    before(async () => {
      h = await startHarness();
    });
    after(async () => {
      await h.cleanup();
    });

    it('when requests are accepted, repeated and refused and the queue drains, then each counter moves by what was sent and the queue gauges follow the queue', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Metrics', totalQuantity: 2 });
      const before = await scrape(h.baseUrl);

      expect((await requestIssue(h.baseUrl, couponId, 'm1')).status).to.equal(202);
      expect((await requestIssue(h.baseUrl, couponId, 'm2')).status).to.equal(202);
      expect((await requestIssue(h.baseUrl, couponId, 'm1')).status).to.equal(202);
      expect((await requestIssue(h.baseUrl, couponId, 'm3')).body.code).to.equal('SOLD_OUT');
      expect((await requestIssue(h.baseUrl, couponId, 'bad user!')).status).to.equal(400);
      expect((await requestIssue(h.baseUrl, 999_999, 'm4')).body.code).to.equal('COUPON_NOT_FOUND');
      expect((await http(h.baseUrl, 'GET', '/no/such/path/123')).status).to.equal(404);

      const queued = await scrape(h.baseUrl);
      const outcome = (o: string) =>
        delta(before, queued, 'coupon_issue_requests_total', { outcome: o });
      expect(
        ['accepted', 'repeat', 'sold_out', 'invalid', 'not_found', 'rate_limited', 'error'].map(
          outcome,
        ),
      ).to.deep.equal([2, 1, 1, 1, 1, 0, 0]);
      // The queue as Redis holds it, for this live event only.
      const state = await couponState(h.container, couponId);
      expect(state.queued).to.equal(2);
      expect(valueOf(queued, 'coupon_queue_depth', { coupon: String(couponId) })).to.equal(2);
      expect(valueOf(queued, 'coupon_inflight', { coupon: String(couponId) })).to.equal(0);
      // Timed under the route's pattern: no raw path (with its id) becomes a label.
      const count = (labels: Record<string, string>) =>
        delta(before, queued, 'http_request_duration_seconds_count', labels);
      expect(count({ route: ACCEPT_ROUTE, method: 'POST', status: '202' })).to.equal(3);
      expect(count({ route: ACCEPT_ROUTE, method: 'POST', status: '409' })).to.equal(1);
      expect(count({ route: ACCEPT_ROUTE, method: 'POST', status: '404' })).to.equal(1);
      expect(count({ route: 'unmatched', method: 'GET', status: '404' })).to.equal(1);
      expect(queued.filter((s) => /\d/.test(s.labels.route ?? ''))).to.deep.equal([]);
      expect(valueOf(queued, 'coupon_redis_up')).to.equal(1);
      expect(valueOf(queued, 'coupon_postgres_up')).to.equal(1);
      // Node's own figures (collectDefaultMetrics).
      expect(queued.some((s) => s.name === 'process_cpu_user_seconds_total')).to.equal(true);

      await drainAll(h.container);

      const drained = await scrape(h.baseUrl);
      const issued = await couponState(h.container, couponId);
      expect(issued.issuedRows.map((r) => r.userId)).to.deep.equal(['m1', 'm2']);
      expect(delta(before, drained, 'coupon_decisions_total', { result: 'issued' })).to.equal(2);
      expect(delta(before, drained, 'coupon_decisions_total', { result: 'sold_out' })).to.equal(0);
      expect(delta(before, drained, 'coupon_batch_size_count')).to.equal(1);
      expect(delta(before, drained, 'coupon_batch_size_sum')).to.equal(2);
      expect(delta(before, drained, 'coupon_batch_duration_seconds_count')).to.equal(1);
      expect(valueOf(drained, 'coupon_worker_last_tick_timestamp_seconds')).to.be.closeTo(
        Date.now() / 1000,
        60,
      );
      expect(valueOf(drained, 'coupon_queue_depth', { coupon: String(couponId) })).to.equal(0);
    });

    it('when an event is closed and leaves the worker’s rounds, then its queue series are gone', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Short-lived', totalQuantity: 5 });
      await requestIssue(h.baseUrl, couponId, 's1');
      const live = await scrape(h.baseUrl);
      expect(live.filter((s) => s.labels.coupon === String(couponId))).to.have.length(2);

      expect(
        (await http(h.baseUrl, 'POST', `/coupons/${couponId}/close`, { admin: true })).status,
      ).to.equal(200);
      await drainAll(h.container);
      await h.container.worker.maintain();
      expect(await h.container.queue.activeCoupons()).to.not.include(couponId);

      const gone = await scrape(h.baseUrl);
      expect(gone.filter((s) => s.labels.coupon === String(couponId))).to.deep.equal([]);
      expect(delta(live, gone, 'coupon_decisions_total', { result: 'event_closed' })).to.equal(1);
    });

    it('when PostgreSQL refuses a batch, then the failure and the compensation are counted, and a batch whose lease expired is counted as recovered', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Flaky', totalQuantity: 3 });
      await requestIssue(h.baseUrl, couponId, 'f1');
      const before = await scrape(h.baseUrl);
      await h.container.pool.query(
        'ALTER TABLE issue_requests ADD CONSTRAINT reject_everything CHECK (false) NOT VALID',
      );
      try {
        await h.container.worker.drainOnce().catch(() => undefined);
      } finally {
        await h.container.pool.query(
          'ALTER TABLE issue_requests DROP CONSTRAINT reject_everything',
        );
      }
      const failed = await scrape(h.baseUrl);
      expect(delta(before, failed, 'coupon_db_failures_total')).to.equal(1);
      expect(delta(before, failed, 'coupon_compensations_total')).to.equal(1);
      expect((await couponState(h.container, couponId)).queued).to.equal(1);

      // A batch taken and never settled (its worker gone): recovery settles it after the lease.
      const taken = await h.container.queue.take(couponId, 10, 200, 'abandoned-batch');
      expect(taken?.items).to.have.length(1);
      await eventually('the batch to be recovered', async () => {
        await h.container.worker.maintain();
        const now = await scrape(h.baseUrl);
        return delta(failed, now, 'coupon_recoveries_total') === 1 ? now : undefined;
      });
      const state = await couponState(h.container, couponId);
      expect([state.inflight, state.leasedBatches]).to.deep.equal([0, 0]);
    });
  });

  describe('with METRICS_TOKEN and rate limits', () => {
    const token = 'metrics-token-0123456789';
    let h: Harness;
    before(async () => {
      h = await startHarness({
        env: {
          METRICS_TOKEN: token,
          RATE_LIMIT_ENABLED: 'true',
          RATE_LIMIT_IP_POINTS: '5',
          RATE_LIMIT_ACCEPT_POINTS: '1',
        },
      });
    });
    after(async () => {
      await h.cleanup();
    });

    it('when scraped without the token or with another, then 401; with it, as often as Prometheus likes, never rate limited', async () => {
      const none = await http(h.baseUrl, 'GET', '/metrics');
      expect([none.status, (none.body as { code?: string }).code]).to.deep.equal([
        401,
        'UNAUTHORIZED',
      ]);
      const wrong = await http(h.baseUrl, 'GET', '/metrics', {
        headers: { authorization: 'Bearer not-the-metrics-token' },
      });
      expect([wrong.status, (wrong.body as { code?: string }).code]).to.deep.equal([
        401,
        'INVALID_TOKEN',
      ]);
      for (let i = 0; i < 8; i += 1) await scrape(h.baseUrl, token);
    });

    it('when a user goes over the accept limit, then the refusal is counted as rate_limited', async () => {
      const couponId = await createCoupon(h.baseUrl, { name: 'Limited', totalQuantity: 5 });
      const before = await scrape(h.baseUrl, token);
      expect((await requestIssue(h.baseUrl, couponId, 'r1')).status).to.equal(202);
      expect((await requestIssue(h.baseUrl, couponId, 'r1')).status).to.equal(429);
      const after = await scrape(h.baseUrl, token);
      const moved = (o: string) =>
        delta(before, after, 'coupon_issue_requests_total', { outcome: o });
      expect([moved('accepted'), moved('rate_limited')]).to.deep.equal([1, 1]);
    });
  });

  describe('with METRICS_ENABLED=false', () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ env: { METRICS_ENABLED: 'false' } });
    });
    after(async () => {
      await h.cleanup();
    });

    it('when /metrics is asked for, then 404 NOT_FOUND, and nothing is kept', async () => {
      const res = await http(h.baseUrl, 'GET', '/metrics');
      expect([res.status, (res.body as { code?: string }).code]).to.deep.equal([404, 'NOT_FOUND']);
      expect(h.container.metrics).to.equal(null);
    });
  });
});
