import { expect } from 'chai';
import pg from 'pg';
import { startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { couponState } from '../support/state.js';

/**
 * Takes PostgreSQL away from the service without stopping the shared server:
 * new connections to the test database are refused and every open one is
 * terminated, as when the server goes down.
 */
async function cutPostgres(databaseUrl: string): Promise<() => Promise<void>> {
  const url = new URL(databaseUrl);
  const name = url.pathname.slice(1);
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query(`ALTER DATABASE "${name}" WITH ALLOW_CONNECTIONS false`);
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
    name,
  ]);
  return async () => {
    await admin.query(`ALTER DATABASE "${name}" WITH ALLOW_CONNECTIONS true`);
    await admin.end();
  };
}

async function until(
  predicate: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('PostgreSQL going away while the queue drains', function () {
  this.timeout(60_000);
  let h: Harness;

  before(async () => {
    // Two lanes (the default): the test reads first come, first served from the order of the
    // issued rows' ids, which is commit order, and batches of one coupon commit in the order
    // they were taken even when both lanes reconnect after the outage at once.
    h = await startHarness({ env: { BATCH_SIZE: '20', BATCH_LANES: '2' } });
  });
  after(async () => {
    await h.container.worker.stop();
    await h.cleanup();
  });

  it('when PostgreSQL is down, then requests are still accepted, the worker compensates and backs off quietly, and everything is issued once it returns', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Outage', totalQuantity: 60 });
    const before = await Promise.all(
      Array.from({ length: 30 }, (_, i) => requestIssue(h.baseUrl, couponId, `early-${i}`)),
    );
    const restore = await cutPostgres(h.databaseUrl);
    let restored = false;
    try {
      h.container.worker.start();
      await until(
        async () => h.container.worker.state().state === 'backing-off',
        10_000,
        'the worker to back off',
      );

      // The accept path never touches PostgreSQL: it keeps taking requests.
      const during = await Promise.all(
        Array.from({ length: 30 }, (_, i) => requestIssue(h.baseUrl, couponId, `during-${i}`)),
      );
      expect(during.map((r) => r.status)).to.deep.equal(Array(30).fill(202));
      const pending = await http(h.baseUrl, 'GET', `/issue-requests/${during[0]?.body.requestId}`);
      expect(pending.body.status).to.equal('PENDING');
      const health = await http(h.baseUrl, 'GET', '/health');
      expect(health.status).to.equal(503);
      expect(health.body).to.include({ postgres: false, redis: true });
      const coupon = await http(h.baseUrl, 'GET', `/coupons/${couponId}`);
      expect([coupon.status, coupon.body.code]).to.deep.equal([503, 'DEPENDENCY_UNAVAILABLE']);
      // Nothing was half-written: every request is back in the queue, the stock untouched.
      const held = await couponState(h.container, couponId).catch(() => null);
      expect(held).to.equal(null); // the state helper itself needs PostgreSQL
      const queued = await h.container.redis.zcard(h.container.keys.coupon(couponId).queue);
      const stock = Number(
        await h.container.redis.hget(h.container.keys.coupon(couponId).meta, 'stock'),
      );
      expect(queued).to.be.at.most(60);
      expect(stock + (60 - queued)).to.be.at.most(60);

      // An outage of a few seconds: a handful of retry lines, not one per request or per batch.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const outageLines = h.logged.filter((l) => l.message === 'drain backing off').length;
      expect(outageLines).to.be.within(1, 3);
      expect(h.logged.filter((l) => l.message === 'batch')).to.have.length(0);

      await restore();
      restored = true;
      await until(
        async () => (await couponState(h.container, couponId)).requestRows.length === 60,
        20_000,
        'every request to be decided',
      );
    } finally {
      if (!restored) await restore();
      await h.container.worker.stop();
    }

    const state = await couponState(h.container, couponId);
    expect(state.issuedRows).to.have.length(60);
    expect(new Set(state.issuedRows.map((r) => r.userId)).size).to.equal(60);
    expect(state.redisStock).to.equal(0);
    expect([state.queued, state.inflight, state.pendingRecords, state.leasedBatches]).to.deep.equal(
      [0, 0, 0, 0],
    );
    // First come, first served survives the outage: the early requests were issued first.
    const order = state.issuedRows.map((r) => r.userId);
    expect(
      order.slice(0, 30).filter((u) => !u.startsWith('early-')),
      'issued before the early requests',
    ).to.deep.equal([]);
    for (const r of before) expect(r.status).to.equal(202);
    expect(
      h.logged.map((l) => l.message),
      'log',
    ).to.include('drain resumed');
  });
});
