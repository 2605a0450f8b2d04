import { expect } from 'chai';
import { request } from 'node:http';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/harness.js';
import { createCoupon, requestIssue } from '../support/http.js';
import { parseMetrics, valueOf, type Sample } from '../support/metrics.js';
import { deploymentOf, ProcessFleet } from '../support/processes.js';

/**
 * One request on a connection of its own: node:cluster hands each new connection to the
 * next API process in turn, so successive calls reach both processes.
 */
function fresh(
  port: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: payload ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('metrics across processes (the supervisor, a worker alone)', function () {
  this.timeout(90_000);
  let h: Harness;
  let fleet: ProcessFleet;
  /** The service's own lease and batch size (the fleet's are short, for fault tests). */
  const settings = { leaseMs: 30_000, batchSize: 2000 };

  before(async () => {
    // The database and key space; the service under test is started by each test.
    h = await startHarness({ heartbeat: false });
    fleet = new ProcessFleet(deploymentOf(h));
  });
  after(async () => {
    await fleet.stopAll();
    await h.cleanup();
  });

  it('when API_PROCESSES=2 ROLE=all and traffic is spread over both API processes, then /metrics from either process counts all of it, with the worker process’s decisions', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const primary = fleet.spawn({
      role: 'all',
      port,
      ...settings,
      env: {
        API_PROCESSES: '2',
        // Freshly forked processes on a loaded machine: the accept path's own bound is not
        // under test here, and a 503 from it would fail the test for the wrong reason.
        REDIS_COMMAND_TIMEOUT_MS: '10000',
      },
    });
    await primary.waitForMessage('all processes ready', {}, { timeoutMs: 30_000 });
    const baseUrl = `http://127.0.0.1:${port}`;
    const couponId = await createCoupon(baseUrl, { name: 'Cluster metrics', totalQuantity: 5 });

    // 8 users for 5 coupons: at most 5 accepted, the rest sold out at the gate or later.
    const answers: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      answers.push(
        (await fresh(port, 'POST', `/coupons/${couponId}/issue-requests`, { userId: `k${i}` }))
          .status,
      );
    }
    // Invalid bodies: refused by whichever process got them.
    for (let i = 0; i < 4; i += 1) {
      expect(
        (await fresh(port, 'POST', `/coupons/${couponId}/issue-requests`, { userId: '' })).status,
      ).to.equal(400);
    }
    const accepted = answers.filter((s) => s === 202).length;
    const soldOut = answers.filter((s) => s === 409).length;
    expect(accepted + soldOut, String(answers)).to.equal(8);

    // The worker process decides every accepted request; its counters arrive with the scrape.
    const scrapes: Sample[][] = [];
    const settled = await eventually('the decisions to be counted', async () => {
      const res = await fresh(port, 'GET', '/metrics');
      expect(res.status, res.text).to.equal(200);
      const samples = parseMetrics(res.text);
      return valueOf(samples, 'coupon_decisions_total', { result: 'issued' }) === accepted
        ? samples
        : undefined;
    });
    scrapes.push(settled);
    // More scrapes on fresh connections: both API processes answer in turn, each with the total.
    for (let i = 0; i < 5; i += 1) {
      scrapes.push(parseMetrics((await fresh(port, 'GET', '/metrics')).text));
    }
    for (const samples of scrapes) {
      const outcome = (o: string) =>
        valueOf(samples, 'coupon_issue_requests_total', { outcome: o });
      expect([outcome('accepted'), outcome('sold_out'), outcome('invalid')]).to.deep.equal([
        accepted,
        soldOut,
        4,
      ]);
      expect(valueOf(samples, 'coupon_decisions_total', { result: 'issued' })).to.equal(accepted);
      expect(
        valueOf(samples, 'http_request_duration_seconds_count', {
          route: '/coupons/:couponId/issue-requests',
          method: 'POST',
          status: '202',
        }),
      ).to.equal(accepted);
      // A probe read once per scrape, not once per process and summed.
      expect(valueOf(samples, 'coupon_redis_up')).to.equal(1);
      expect(valueOf(samples, 'coupon_worker_last_tick_timestamp_seconds')).to.be.greaterThan(0);
    }
    const rows = await h.container.pool.query<{ n: string }>(
      'SELECT count(*) AS n FROM issued_coupons WHERE coupon_id = $1',
      [couponId],
    );
    expect(Number(rows.rows[0]?.n)).to.equal(accepted);
    // Its worker would otherwise take the next test's requests.
    primary.signal('SIGTERM');
    await primary.waitForExit();
  });

  it('when a worker runs alone (ROLE=worker) with WORKER_METRICS_PORT, then it serves its own decisions at /metrics and nothing else', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const worker = fleet.spawn({
      role: 'worker',
      ...settings,
      env: { WORKER_METRICS_PORT: String(port) },
    });
    try {
      await worker.waitForMessage('serving metrics', {}, { timeoutMs: 30_000 });
      // Accepted by the harness's API (this process); decided by the worker process alone.
      const couponId = await createCoupon(h.baseUrl, { name: 'Worker alone', totalQuantity: 3 });
      for (const user of ['w1', 'w2']) {
        expect((await requestIssue(h.baseUrl, couponId, user)).status).to.equal(202);
      }
      const samples = await eventually('the worker to count its decisions', async () => {
        const res = await fresh(port, 'GET', '/metrics');
        expect(res.status, res.text).to.equal(200);
        const parsed = parseMetrics(res.text);
        // A batch's decisions are counted as it settles and its size once it has returned,
        // so a scrape can fall between the two: wait for both.
        return valueOf(parsed, 'coupon_decisions_total', { result: 'issued' }) === 2 &&
          valueOf(parsed, 'coupon_batch_size_sum') === 2
          ? parsed
          : undefined;
      });
      expect(valueOf(samples, 'coupon_decisions_total', { result: 'issued' })).to.equal(2);
      expect(valueOf(samples, 'coupon_batch_size_sum')).to.equal(2);
      expect(valueOf(samples, 'coupon_worker_last_tick_timestamp_seconds')).to.be.greaterThan(0);
      expect((await fresh(port, 'GET', `/coupons/${couponId}`)).status).to.equal(404);
      const rows = await h.container.pool.query<{ n: string }>(
        'SELECT count(*) AS n FROM issued_coupons WHERE coupon_id = $1',
        [couponId],
      );
      expect(Number(rows.rows[0]?.n)).to.equal(2);
    } finally {
      worker.signal('SIGTERM');
      await worker.waitForExit();
    }
  });
});
