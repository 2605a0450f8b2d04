import { expect } from 'chai';
import { parseRequestId } from '../../src/domain/issue-request.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { couponState } from '../support/state.js';
import { bearer, JWT_SECRET, userToken } from '../support/tokens.js';

const STOCK = 100;
const USERS = 1_500;
const REQUESTS = 2_000;

/** Deterministic: user i for the first 1,500 requests, then repeats of every third user. */
function userFor(i: number): string {
  return i < USERS ? `user-${i}` : `user-${(i - USERS) * 3}`;
}

describe('concurrency: a crowd against a small stock', function () {
  this.timeout(120_000);
  let h: Harness;
  let others: Harness[];

  before(async () => {
    h = await startHarness();
    // Two more deployments' worth of connections on the same database and key space: three workers.
    others = await Promise.all(
      [1, 2].map(() => startHarness({ databaseUrl: h.databaseUrl, prefix: h.prefix })),
    );
  });
  after(async () => {
    for (const o of others) await o.cleanup();
    await h.cleanup();
  });

  it(`when ${REQUESTS} parallel requests from ${USERS} users meet ${STOCK} coupons and three workers drain at once, then exactly the first ${STOCK} distinct users are issued and both stores agree`, async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Crowd', totalQuantity: STOCK });
    const apis = [h, ...others].map((x) => x.baseUrl);

    // Three workers race over the same queue while the crowd is still arriving.
    let arriving = true;
    const workers = [h, ...others].map(async (x) => {
      while (arriving) {
        if ((await x.container.worker.drainOnce()) === 0)
          await new Promise((r) => setTimeout(r, 2));
      }
      await drainAll(x.container);
    });
    const answers = await Promise.all(
      Array.from({ length: REQUESTS }, (_, i) =>
        requestIssue(apis[i % apis.length] as string, couponId, userFor(i)).then((res) => ({
          res,
          userId: userFor(i),
        })),
      ),
    );
    arriving = false;
    await Promise.all(workers);

    for (const { res } of answers) {
      expect(res.status, JSON.stringify(res.body)).to.be.oneOf([202, 409]);
      if (res.status === 409) expect(res.body.code).to.be.oneOf(['SOLD_OUT', 'ALREADY_ISSUED']);
    }
    const accepted = answers.filter((a) => a.res.status === 202);
    // One place per user: every 202 of one user carries the same request id.
    const idOf = new Map<string, string>();
    for (const { res, userId } of accepted) {
      const known = idOf.get(userId);
      if (known) expect(res.body.requestId).to.equal(known);
      else idOf.set(userId, res.body.requestId);
    }

    // Every accepted request is final, and PostgreSQL agrees with what the API answers.
    const finals = await Promise.all(
      [...idOf.values()].map((id) =>
        http<{ status: string; userId: string }>(h.baseUrl, 'GET', `/issue-requests/${id}`),
      ),
    );
    for (const f of finals) expect(f.body.status).to.be.oneOf(['ISSUED', 'REJECTED']);

    const state = await couponState(h.container, couponId);
    const issuedUsers = state.issuedRows.map((r) => r.userId);
    expect(state.issuedRows).to.have.length(STOCK);
    expect(new Set(issuedUsers).size).to.equal(STOCK);
    expect(state.issuedCount).to.equal(STOCK);
    expect(state.requestRows).to.have.length(idOf.size);
    expect(state.requestRows.filter((r) => r.status === 'ISSUED')).to.have.length(STOCK);

    // First come, first served: the issued users are the first distinct arrivals.
    const byArrival = [...idOf.entries()].sort((a, b) => {
      const x = BigInt(parseRequestId(a[1]).arrival);
      const y = BigInt(parseRequestId(b[1]).arrival);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    expect(issuedUsers.slice().sort()).to.deep.equal(
      byArrival
        .slice(0, STOCK)
        .map(([u]) => u)
        .sort(),
    );

    // Redis and PostgreSQL agree, and nothing is left in flight.
    expect(state.redisStock).to.equal(state.total - state.issuedRows.length);
    expect(state.redisIssued).to.deep.equal(issuedUsers.slice().sort());
    expect([state.queued, state.inflight, state.pendingRecords, state.leasedBatches]).to.deep.equal(
      [0, 0, 0, 0],
    );
  });
});

describe('concurrency: a crowd with bearer tokens against a small stock', function () {
  this.timeout(120_000);
  const stock = 50;
  const users = 400;
  const requests = 600;
  let h: Harness;

  before(async () => {
    h = await startHarness({ env: { JWT_SECRET } });
  });
  after(async () => h?.cleanup());

  it(`when ${requests} parallel requests from ${users} token holders meet ${stock} coupons, then exactly the stock is issued to distinct users, each the token's subject`, async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Token crowd', totalQuantity: stock });
    const userOf = (i: number) => (i < users ? `holder-${i}` : `holder-${(i - users) * 2}`);
    const tokens = new Map<string, string>();
    for (let i = 0; i < users; i += 1) tokens.set(userOf(i), await userToken(userOf(i)));

    let arriving = true;
    const worker = (async () => {
      while (arriving) {
        if ((await h.container.worker.drainOnce()) === 0)
          await new Promise((r) => setTimeout(r, 2));
      }
      await drainAll(h.container);
    })();
    const answers = await Promise.all(
      Array.from({ length: requests }, (_, i) =>
        http<{ userId: string; code?: string }>(
          h.baseUrl,
          'POST',
          `/coupons/${couponId}/issue-requests`,
          { body: {}, headers: bearer(tokens.get(userOf(i)) as string) },
        ).then((res) => ({ res, userId: userOf(i) })),
      ),
    );
    arriving = false;
    await worker;

    for (const { res, userId } of answers) {
      expect(res.status, JSON.stringify(res.body)).to.be.oneOf([202, 409]);
      if (res.status === 202) expect(res.body.userId).to.equal(userId);
    }
    const state = await couponState(h.container, couponId);
    const issuedUsers = state.issuedRows.map((r) => r.userId);
    expect(state.issuedRows).to.have.length(stock);
    expect(new Set(issuedUsers).size).to.equal(stock);
    expect(issuedUsers.every((u) => tokens.has(u))).to.equal(true);
    expect(state.issuedCount).to.equal(stock);
    expect(state.redisStock).to.equal(0);
    expect([state.queued, state.inflight, state.pendingRecords, state.leasedBatches]).to.deep.equal(
      [0, 0, 0, 0],
    );
  });
});
