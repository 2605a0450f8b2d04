import { expect } from 'chai';
import { parseRequestId } from '../../src/domain/issue-request.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { couponState } from '../support/state.js';

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
