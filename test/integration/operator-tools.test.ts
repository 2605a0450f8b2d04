import { expect } from 'chai';
import { startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { couponState, expectNoStrayExpiry, snapshot } from '../support/state.js';

interface DriftItem {
  code: string;
  count?: number;
  sample?: string[];
  redis?: unknown;
  postgres?: unknown;
}

describe('operator tools: consistency and sync', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  const consistency = (couponId: number) =>
    http<{
      consistent: boolean;
      drift: DriftItem[];
      redis: Record<string, unknown>;
      postgres: Record<string, unknown>;
    }>(h.baseUrl, 'GET', `/coupons/${couponId}/consistency`, { admin: true });
  const sync = (couponId: number) =>
    http<{
      differed: DriftItem[];
      before: Record<string, unknown>;
      after: Record<string, unknown>;
    }>(h.baseUrl, 'POST', `/coupons/${couponId}/sync`, { admin: true });

  async function issue(couponId: number, users: string[]): Promise<void> {
    for (const u of users) await requestIssue(h.baseUrl, couponId, u);
    while ((await h.container.worker.drainOnce()) > 0);
  }

  it('when both stores agree, then consistency says so and shows both sides', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Agree', totalQuantity: 5 });
    await issue(couponId, ['a1', 'a2']);
    await requestIssue(h.baseUrl, couponId, 'a3');

    const res = await consistency(couponId);

    expect(res.status).to.equal(200);
    expect(res.body.consistent).to.equal(true);
    expect(res.body.drift).to.deep.equal([]);
    expect(res.body.redis).to.include({
      loaded: true,
      stock: 3,
      issuedUsers: 2,
      queued: 1,
      inflightBatches: 0,
    });
    expect(res.body.postgres).to.include({ totalQuantity: 5, issuedCount: 2, remaining: 3 });
    await expectNoStrayExpiry(h.container);
  });

  it('when a batch is in flight, then its decisions are accounted for and nothing is called drift', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'In flight', totalQuantity: 5 });
    await requestIssue(h.baseUrl, couponId, 'f1');
    await h.container.queue.take(couponId, 10, 60_000, 'flying');

    const res = await consistency(couponId);

    expect(res.body.drift).to.deep.equal([]);
    expect(res.body.redis).to.include({ inflightBatches: 1, inflightIssued: 1, stock: 4 });
  });

  it('when Redis drifted from PostgreSQL, then consistency names the drift and sync repairs Redis without touching PostgreSQL', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Drifted', totalQuantity: 5 });
    await issue(couponId, ['d1', 'd2']);
    const k = h.container.keys.coupon(couponId);
    await h.container.redis.srem(k.issued, 'd1');
    await h.container.redis.sadd(k.issued, 'ghost');
    await h.container.redis.hset(k.meta, 'stock', '4');
    const postgresBefore = (await snapshot(h.container, h.prefix)).postgres;

    const seen = await consistency(couponId);
    const repaired = await sync(couponId);
    const after = await consistency(couponId);

    expect(seen.body.consistent).to.equal(false);
    const byCode = Object.fromEntries(seen.body.drift.map((d) => [d.code, d]));
    expect(byCode.STOCK_MISMATCH).to.include({ redis: 4, postgres: 3 });
    expect(byCode.ISSUED_SET_MISSING_USERS).to.deep.include({ count: 1, sample: ['d1'] });
    expect(byCode.ISSUED_SET_EXTRA_USERS).to.deep.include({ count: 1, sample: ['ghost'] });
    expect(repaired.status).to.equal(200);
    expect(repaired.body.differed.map((d) => d.code).sort()).to.deep.equal(
      ['ISSUED_SET_EXTRA_USERS', 'ISSUED_SET_MISSING_USERS', 'STOCK_MISMATCH'].sort(),
    );
    expect(repaired.body.before).to.deep.equal({ stock: 4, issuedUsers: 2 });
    expect(repaired.body.after).to.deep.equal({ stock: 3, issuedUsers: 2 });
    expect(after.body.consistent).to.equal(true);
    const state = await couponState(h.container, couponId);
    expect(state.redisIssued).to.deep.equal(['d1', 'd2']);
    expect(state.redisStock).to.equal(3);
    expect((await snapshot(h.container, h.prefix)).postgres).to.deep.equal(postgresBefore);
    await expectNoStrayExpiry(h.container);
  });

  it('when an operator syncs a coupon, then its issued set keeps no expiry and issued users stay refused', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Kept', totalQuantity: 5 });
    await issue(couponId, ['k1']);

    expect((await sync(couponId)).status).to.equal(200);

    const k = h.container.keys.coupon(couponId);
    expect(await h.container.redis.pttl(k.issued)).to.equal(-1);
    await expectNoStrayExpiry(h.container);
    // What a minute later looks like when the set expired: the user would be let in again.
    const again = await requestIssue(h.baseUrl, couponId, 'k1');
    expect([again.status, again.body.code]).to.deep.equal([409, 'ALREADY_ISSUED']);
  });

  it('when Redis does not hold the coupon at all, then sync loads it and reports GATE_NOT_LOADED', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Unloaded', totalQuantity: 4 });
    await issue(couponId, ['u1']);
    await h.container.redis.del(...Object.values(h.container.keys.coupon(couponId)));

    const before = await consistency(couponId);
    const res = await sync(couponId);

    expect(before.body.drift.map((d) => d.code)).to.deep.equal(['GATE_NOT_LOADED']);
    expect(res.body.differed.map((d) => d.code)).to.deep.equal(['GATE_NOT_LOADED']);
    expect((await consistency(couponId)).body.consistent).to.equal(true);
    expect((await couponState(h.container, couponId)).redisStock).to.equal(3);
    expect(await h.container.redis.pttl(h.container.keys.coupon(couponId).issued)).to.equal(-1);
    await expectNoStrayExpiry(h.container);
  });

  it('when syncs run while requests arrive and the worker drains, then nothing is lost or over-issued and the stores end up agreeing', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Busy', totalQuantity: 150 });
    h.container.worker.start();
    try {
      const requests = Promise.all(
        Array.from({ length: 400 }, (_, i) => requestIssue(h.baseUrl, couponId, `busy-${i}`)),
      );
      const syncs = (async () => {
        for (let i = 0; i < 5; i += 1) {
          const res = await sync(couponId);
          expect(res.status, JSON.stringify(res.body)).to.equal(200);
        }
      })();
      const [answers] = await Promise.all([requests, syncs]);
      const accepted = answers.filter((a) => a.status === 202).map((a) => a.body.requestId);
      const deadline = Date.now() + 20_000;
      let statuses: string[] = [];
      do {
        await new Promise((resolve) => setTimeout(resolve, 50));
        statuses = await Promise.all(
          accepted.map(
            async (id) =>
              (await http(h.baseUrl, 'GET', `/issue-requests/${id}`)).body.status as string,
          ),
        );
      } while (statuses.includes('PENDING') && Date.now() < deadline);
      expect(statuses.filter((s) => s === 'PENDING')).to.deep.equal([]);
    } finally {
      await h.container.worker.stop();
    }

    const state = await couponState(h.container, couponId);
    expect(state.issuedRows).to.have.length(150);
    expect(new Set(state.issuedRows.map((r) => r.userId)).size).to.equal(150);
    expect((await consistency(couponId)).body.drift).to.deep.equal([]);
    await expectNoStrayExpiry(h.container);
  });

  it('when the coupon does not exist, then both tools answer 404', async () => {
    expect((await consistency(424242)).status).to.equal(404);
    const missing = await sync(424242);
    expect(missing.status).to.equal(404);
    expect((missing.body as unknown as { code: string }).code).to.equal('COUPON_NOT_FOUND');
  });
});
