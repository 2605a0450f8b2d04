import { expect } from 'chai';
import { parseRequestId } from '../../src/domain/issue-request.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue, type HttpResult } from '../support/http.js';
import {
  startPrivateRedis,
  type PrivateRedis,
  type PrivateRedisOptions,
} from '../support/private-redis.js';
import { couponState, expectNoStrayExpiry } from '../support/state.js';

/** Hang guard only: a client that waited this long was not answered "at once". */
const CLIENT_ABORT_MS = 5_000;
const HANG_GUARD_MS = 4_000;

interface Timed<T> {
  readonly res: HttpResult<T>;
  readonly elapsedMs: number;
}

/**
 * Like `http()`, but bounded by an AbortSignal so that a hanging server fails
 * the test with a clear message instead of running into mocha's timeout.
 */
async function timedHttp<T = Record<string, unknown>>(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Timed<T>> {
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(baseUrl + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(CLIENT_ABORT_MS),
    });
  } catch (err) {
    throw new Error(`${method} ${path} got no answer within ${CLIENT_ABORT_MS} ms: ${String(err)}`);
  }
  const text = await response.text();
  const elapsedMs = Math.round(performance.now() - started);
  return {
    elapsedMs,
    res: {
      status: response.status,
      contentType: response.headers.get('content-type') ?? '',
      headers: response.headers,
      body: (text === '' ? null : JSON.parse(text)) as T,
    },
  };
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Both of the container's connections answer again (ioredis reconnects on its own). */
async function redisReconnected(h: Harness): Promise<void> {
  await waitFor('the service to reconnect to Redis', async () => {
    await Promise.all([h.container.redis.ping(), h.container.workerRedis.ping()]);
    return true;
  });
}

function expectUnavailable(res: HttpResult): void {
  expect(res.status).to.equal(503);
  expect(res.contentType).to.match(/^application\/problem\+json/);
  expect(res.body.code).to.equal('DEPENDENCY_UNAVAILABLE');
  expect(res.headers.get('retry-after')).to.equal('1');
}

interface Invariants {
  total: number;
  accepted: { requestId: string; userId: string }[];
}

/** I1–I4 plus "every accepted request is final", from both stores and the API. */
async function expectConsistent(h: Harness, couponId: number, { total, accepted }: Invariants) {
  const state = await couponState(h.container, couponId);
  const issuedUsers = state.issuedRows.map((r) => r.userId);
  // I1: never over-issued, in the rows and in the counter.
  expect(state.issuedRows.length).to.be.at.most(total);
  expect(state.issuedCount).to.equal(state.issuedRows.length);
  // I2: no user twice.
  expect(new Set(issuedUsers).size).to.equal(issuedUsers.length);
  // I3: Redis stock and PostgreSQL agree on what is left.
  expect(state.redisStock + state.issuedRows.length).to.equal(total);
  // I4: the Redis issued set is exactly the issued rows.
  expect(state.redisIssued).to.deep.equal([...issuedUsers].sort());
  expect([state.queued, state.inflight, state.pendingRecords, state.leasedBatches]).to.deep.equal([
    0, 0, 0, 0,
  ]);
  for (const { requestId, userId } of accepted) {
    const view = await http(h.baseUrl, 'GET', `/issue-requests/${requestId}`);
    expect(view.status, requestId).to.equal(200);
    expect(view.body.userId).to.equal(userId);
    expect(['ISSUED', 'REJECTED'], requestId).to.include(view.body.status);
  }
  await expectNoStrayExpiry(h.container);
  return state;
}

describe('Redis outages (a private redis-server per test)', function () {
  this.timeout(40_000);
  let redis: PrivateRedis | undefined;
  let h: Harness | undefined;

  async function setUp(options: PrivateRedisOptions): Promise<{ redis: PrivateRedis; h: Harness }> {
    const server = await startPrivateRedis(options);
    redis = server;
    const harness = await startHarness({
      env: { REDIS_URL: server.url, REDIS_COMMAND_TIMEOUT_MS: '1000', LEASE_MS: '1500' },
    });
    h = harness;
    return { redis: server, h: harness };
  }

  afterEach(async () => {
    try {
      if (h && redis) {
        // The harness deletes its keys through the service's own connection: bring Redis back first.
        if (!redis.running) await redis.restart();
        else if (redis.frozen) redis.thaw();
        await redisReconnected(h);
        await h.cleanup();
      }
    } finally {
      h = undefined;
      await redis?.stop();
      redis = undefined;
    }
  });

  describe('a. Redis stalls (SIGSTOP, then SIGCONT)', () => {
    it('when Redis stalls, then accept answers 503 DEPENDENCY_UNAVAILABLE instead of hanging, health is 503, and after SIGCONT the same request is accepted without restarting the service', async () => {
      const { redis, h } = await setUp({ appendOnly: false });
      const couponId = await createCoupon(h.baseUrl, { name: 'Stalled', totalQuantity: 3 });
      const early = await requestIssue(h.baseUrl, couponId, 'early');
      expect(early.status).to.equal(202);
      const k = h.container.keys.coupon(couponId);

      redis.freeze();
      let stalled: Timed<Record<string, unknown>>;
      let health: Timed<Record<string, unknown>>;
      try {
        stalled = await timedHttp(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
          userId: 'stella',
        });
        health = await timedHttp(h.baseUrl, 'GET', '/health');
      } finally {
        redis.thaw();
      }
      const retried = await timedHttp<{ requestId: string; status: string }>(
        h.baseUrl,
        'POST',
        `/coupons/${couponId}/issue-requests`,
        { userId: 'stella' },
      );
      const healthAfter = await timedHttp(h.baseUrl, 'GET', '/health');

      console.log(
        `      [measured] Redis stalled: accept ${stalled.res.status} in ${stalled.elapsedMs} ms, ` +
          `/health ${health.res.status} in ${health.elapsedMs} ms; after SIGCONT: accept ${retried.res.status} in ${retried.elapsedMs} ms`,
      );
      expectUnavailable(stalled.res);
      expect(stalled.elapsedMs).to.be.below(HANG_GUARD_MS);
      expect(health.res.status).to.equal(503);
      expect(health.res.body).to.include({ status: 'degraded', redis: false, postgres: true });
      expect(retried.res.status).to.equal(202);
      expect(retried.res.body.status).to.equal('PENDING');
      expect(healthAfter.res.status).to.equal(200);
      expect(healthAfter.res.body).to.include({ status: 'ok', redis: true, postgres: true });
      // One place in the queue for stella, the one the 202 names; nothing decided, nothing issued.
      const { arrival } = parseRequestId(retried.res.body.requestId);
      expect(await h.container.redis.zscore(k.queue, 'stella')).to.equal(arrival);
      const state = await couponState(h.container, couponId);
      expect(state.queued).to.equal(2);
      expect(state.pendingRecords).to.equal(2);
      expect(state.redisStock).to.equal(3);
      expect(state.redisIssued).to.deep.equal([]);
      expect(state.requestRows).to.deep.equal([]);
      expect(state.issuedRows).to.deep.equal([]);
    });

    it('when an accept was answered 503 because Redis stalled, then after SIGCONT nothing of it was written: the user has no queued request and no issued entry', async () => {
      const { redis, h } = await setUp({ appendOnly: false });
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Stalled, no trace',
        totalQuantity: 3,
      });
      const k = h.container.keys.coupon(couponId);
      const before = await couponState(h.container, couponId);

      redis.freeze();
      let stalled: Timed<Record<string, unknown>>;
      try {
        stalled = await timedHttp(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
          userId: 'stella',
        });
      } finally {
        redis.thaw();
      }

      expectUnavailable(stalled.res);
      expect(stalled.elapsedMs).to.be.below(HANG_GUARD_MS);
      // Whatever was sent while Redis was frozen is executed, in order, once it runs again.
      // These reads use the same connection, after it, so they see whatever it did.
      const after = await couponState(h.container, couponId);
      expect(
        await h.container.redis.zscore(k.queue, 'stella'),
        'a request answered 503 was queued after all',
      ).to.equal(null);
      expect(await h.container.redis.sismember(k.issued, 'stella')).to.equal(0);
      expect(after).to.deep.equal(before);
    });
  });

  describe('b. Redis is killed and comes back with its data (AOF)', () => {
    it('when Redis is unreachable, then accept answers 503 at once, health is 503, the cron worker backs off, and after Redis is back it resumes by itself and decides every waiting request', async () => {
      const { redis, h } = await setUp({ appendOnly: true });
      const total = 4;
      const couponId = await createCoupon(h.baseUrl, { name: 'Killed', totalQuantity: total });
      const accepted: { requestId: string; userId: string }[] = [];
      for (const userId of ['ada', 'bob', 'cy']) {
        const res = await requestIssue(h.baseUrl, couponId, userId);
        expect(res.status).to.equal(202);
        accepted.push({ requestId: res.body.requestId, userId });
      }
      const k = h.container.keys.coupon(couponId);

      await redis.kill();
      h.container.worker.start();
      let refused: Timed<Record<string, unknown>>;
      let health: Timed<{ status: string; redis: boolean; worker?: { state: string } }>;
      let resumeMs: number;
      try {
        refused = await timedHttp(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
          userId: 'late',
        });
        await waitFor('the worker to back off', async () =>
          h.container.worker.state().state === 'backing-off' ? true : undefined,
        );
        health = await timedHttp(h.baseUrl, 'GET', '/health');

        await redis.restart();
        const restartedAt = performance.now();
        await waitFor('every accepted request to be ISSUED in PostgreSQL', async () => {
          const { rows } = await h.container.pool.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM issue_requests WHERE coupon_id = $1 AND status = 'ISSUED'",
            [couponId],
          );
          return rows[0]?.n === accepted.length ? true : undefined;
        });
        resumeMs = Math.round(performance.now() - restartedAt);
        await waitFor('the worker to stop backing off', async () =>
          h.container.worker.state().state !== 'backing-off' ? true : undefined,
        );
      } finally {
        await h.container.worker.stop();
      }

      console.log(
        `      [measured] Redis killed: accept ${refused.res.status} in ${refused.elapsedMs} ms, ` +
          `/health ${health.res.status} in ${health.elapsedMs} ms; worker resumed and drained ${accepted.length} requests ${resumeMs} ms after Redis answered again`,
      );
      expectUnavailable(refused.res);
      expect(refused.elapsedMs).to.be.below(HANG_GUARD_MS);
      expect(health.res.status).to.equal(503);
      expect(health.res.body).to.include({ status: 'degraded', redis: false });
      expect(health.res.body.worker?.state).to.equal('backing-off');
      const state = await expectConsistent(h, couponId, { total, accepted });
      expect(state.issuedRows.map((r) => r.userId)).to.deep.equal(['ada', 'bob', 'cy']);
      expect(state.issuedRows.map((r) => r.requestId)).to.deep.equal(
        accepted.map((a) => a.requestId),
      );
      expect(state.redisStock).to.equal(1);
      // The refused request left nothing behind.
      expect(await h.container.redis.zscore(k.queue, 'late')).to.equal(null);
      expect(state.requestRows.map((r) => r.userId)).to.not.include('late');
    });
  });

  describe('c. Redis comes back empty (no persistence) while requests wait', () => {
    it('when Redis lost its data, then waiting requests answer 410 REQUEST_LOST, the gate is rebuilt from PostgreSQL, the same users can ask again with a new request id, and nothing is over-issued', async () => {
      const { redis, h } = await setUp({ appendOnly: false });
      const total = 3;
      const couponId = await createCoupon(h.baseUrl, { name: 'Amnesia', totalQuantity: total });
      const k = h.container.keys.coupon(couponId);
      const ivy = await requestIssue(h.baseUrl, couponId, 'ivy');
      await drainAll(h.container);
      const lost: { requestId: string; userId: string }[] = [];
      for (const userId of ['jay', 'kim']) {
        const res = await requestIssue(h.baseUrl, couponId, userId);
        expect(res.status).to.equal(202);
        lost.push({ requestId: res.body.requestId, userId });
      }
      expect((await couponState(h.container, couponId)).queued).to.equal(2);

      await redis.kill();
      await redis.restart({ appendOnly: false });
      await redisReconnected(h);
      expect(await h.container.redis.exists(k.meta, k.queue, k.issued)).to.equal(0);

      const ivyAgain = await requestIssue(h.baseUrl, couponId, 'ivy');
      const rebuilt = await couponState(h.container, couponId);
      const lostViews = [];
      for (const { requestId } of lost)
        lostViews.push(await http(h.baseUrl, 'GET', `/issue-requests/${requestId}`));
      const ivyView = await http(h.baseUrl, 'GET', `/issue-requests/${ivy.body.requestId}`);
      const resubmitted: { requestId: string; userId: string }[] = [];
      for (const { userId } of lost) {
        const res = await requestIssue(h.baseUrl, couponId, userId);
        expect(res.status, userId).to.equal(202);
        resubmitted.push({ requestId: res.body.requestId, userId });
      }
      const latecomer = await requestIssue(h.baseUrl, couponId, 'lou');
      await drainAll(h.container);

      // (ii) the gate came back from PostgreSQL: one issued, two left, ivy still known.
      expect([ivyAgain.status, ivyAgain.body.code]).to.deep.equal([409, 'ALREADY_ISSUED']);
      expect(rebuilt.redisStock).to.equal(2);
      expect(rebuilt.redisIssued).to.deep.equal(['ivy']);
      expect(rebuilt.queued).to.equal(0);
      expect(ivyView.body).to.include({ status: 'ISSUED' });
      // (i) the requests that were waiting are reported lost, not unknown.
      for (const view of lostViews) {
        expect(view.status).to.equal(410);
        expect(view.contentType).to.match(/^application\/problem\+json/);
        expect(view.body.code).to.equal('REQUEST_LOST');
      }
      // (iii) asked again: new ids, decided, and the stock taken by the two is not sold twice.
      for (const [i, again] of resubmitted.entries())
        expect(again.requestId).to.not.equal(lost[i]?.requestId);
      expect([latecomer.status, latecomer.body.code]).to.deep.equal([409, 'SOLD_OUT']);
      const state = await expectConsistent(h, couponId, {
        total,
        accepted: [{ requestId: ivy.body.requestId, userId: 'ivy' }, ...resubmitted],
      });
      expect(state.issuedRows.map((r) => r.userId)).to.deep.equal(['ivy', 'jay', 'kim']);
      expect(state.issuedCount).to.equal(total);
      expect(state.redisStock).to.equal(0);
      for (const { requestId } of lost) {
        const still = await http(h.baseUrl, 'GET', `/issue-requests/${requestId}`);
        expect([still.status, still.body.code]).to.deep.equal([410, 'REQUEST_LOST']);
        expect(state.requestRows.map((r) => r.requestId)).to.not.include(requestId);
      }
    });
  });
});
