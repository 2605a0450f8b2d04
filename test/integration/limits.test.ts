import { expect } from 'chai';
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLimits } from '../../src/api/limits.js';
import { errorHandler } from '../../src/api/problem.js';
import { redisLimiter } from '../../src/infra/redis/rate-limiter.store.js';
import { startHarness, type Harness } from '../support/harness.js';
import { ADMIN_TOKEN } from '../support/harness.js';
import { eventually } from '../support/eventually.js';
import { createCoupon, http, type HttpResult } from '../support/http.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';

const WINDOW_S = 2;

/** Requests from `address` as the trusted loopback proxy reports it (TRUST_PROXY=loopback). */
function from(address: string, headers: Record<string, string> = {}) {
  return { 'x-forwarded-for': address, ...headers };
}

function expectRateLimited(res: HttpResult, limit: number): void {
  expect([res.status, res.body.code]).to.deep.equal([429, 'RATE_LIMITED']);
  expect(res.contentType).to.match(/^application\/problem\+json/);
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(retryAfter).to.be.within(1, WINDOW_S);
  expect(res.headers.get('ratelimit-limit')).to.equal(String(limit));
  expect(res.headers.get('ratelimit-remaining')).to.equal('0');
  expect(Number(res.headers.get('ratelimit-reset'))).to.be.within(1, WINDOW_S);
  expect(res.headers.get('ratelimit-policy')).to.equal(`${limit};w=${WINDOW_S}`);
}

describe('rate limits (Redis-backed, TRUST_PROXY=loopback so X-Forwarded-For names the client)', function () {
  this.timeout(60_000);
  let h: Harness;
  let couponId: number;
  let addresses = 0;
  /** A client address no other test used. */
  const fresh = () => `10.0.${Math.floor(addresses / 250)}.${(addresses++ % 250) + 1}`;

  before(async () => {
    h = await startHarness({
      env: {
        RATE_LIMIT_ENABLED: 'true',
        TRUST_PROXY: 'loopback',
        RATE_LIMIT_IP_POINTS: '6',
        RATE_LIMIT_IP_WINDOW_S: String(WINDOW_S),
        RATE_LIMIT_ACCEPT_POINTS: '3',
        RATE_LIMIT_ACCEPT_WINDOW_S: String(WINDOW_S),
        RATE_LIMIT_AUTH_FAILURE_POINTS: '3',
        RATE_LIMIT_AUTH_FAILURE_WINDOW_S: String(WINDOW_S),
      },
    });
    couponId = await createCoupon(h.baseUrl, { name: 'Limited', totalQuantity: 100 });
  });
  after(async () => {
    await h.cleanup();
  });

  it('when one address sends more requests than its limit, then the next is 429 RATE_LIMITED with Retry-After and the RateLimit headers, other addresses are served, and after the window it is served again', async () => {
    const address = fresh();
    const served: HttpResult[] = [];
    for (let i = 0; i < 6; i += 1) {
      served.push(await http(h.baseUrl, 'GET', `/coupons/${couponId}`, { headers: from(address) }));
    }
    const refused = await http(h.baseUrl, 'GET', `/coupons/${couponId}`, {
      headers: from(address),
    });
    const other = await http(h.baseUrl, 'GET', `/coupons/${couponId}`, { headers: from(fresh()) });

    expect(served.map((r) => r.status)).to.deep.equal([200, 200, 200, 200, 200, 200]);
    expect(served.map((r) => r.headers.get('ratelimit-remaining'))).to.deep.equal([
      '5',
      '4',
      '3',
      '2',
      '1',
      '0',
    ]);
    expectRateLimited(refused, 6);
    expect(other.status).to.equal(200);
    // The count lives in Redis, under the deployment's prefix, and expires with its window.
    const key = `${h.prefix}rl:ip:${address}`;
    expect(Number(await h.container.redis.get(key))).to.be.at.least(6);
    expect(await h.container.redis.pttl(key)).to.be.within(1, WINDOW_S * 1000);

    await eventually('the window to end', async () => {
      const again = await http(h.baseUrl, 'GET', `/coupons/${couponId}`, {
        headers: from(address),
      });
      return again.status === 200 || undefined;
    });
  });

  it('when one user sends more issue requests than the per-user limit, then the next is 429 from any address and nothing more is queued for them', async () => {
    const k = h.container.keys.coupon(couponId);
    const answers: HttpResult[] = [];
    for (let i = 0; i < 3; i += 1) {
      answers.push(
        await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
          body: { userId: 'greedy' },
          headers: from(fresh()),
        }),
      );
    }
    const queuedBefore = await h.container.redis.zcard(k.queue);
    const refused = await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
      body: { userId: 'greedy' },
      headers: from(fresh()),
    });
    const someoneElse = await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
      body: { userId: 'patient' },
      headers: from(fresh()),
    });

    expect(answers[0]?.status).to.equal(202);
    expect(answers.map((r) => r.status)).to.not.include(429);
    expectRateLimited(refused, 3);
    expect(someoneElse.status).to.equal(202);
    expect(await h.container.redis.zscore(k.queue, 'greedy')).to.not.equal(null);
    expect(await h.container.redis.zcard(k.queue)).to.equal(queuedBefore + 1);
    expect(Number(await h.container.redis.get(`${h.prefix}rl:accept:greedy`))).to.equal(4);
  });

  it('when an issue request is answered under the limits, then it carries the RateLimit headers of the limit closest to refusing', async () => {
    const res = await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
      body: { userId: 'headers' },
      headers: from(fresh()),
    });

    expect(res.status).to.equal(202);
    // Per user 3 (2 left) is tighter than per address 6 (5 left).
    expect(res.headers.get('ratelimit-limit')).to.equal('3');
    expect(res.headers.get('ratelimit-remaining')).to.equal('2');
    expect(res.headers.get('ratelimit-policy')).to.equal(`3;w=${WINDOW_S}`);
  });

  it('when issue requests come from one address, then they count against its limit too', async () => {
    const address = fresh();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i += 1) {
      const res = await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
        body: { userId: `crowd-${i}` },
        headers: from(address),
      });
      statuses.push(res.status);
    }

    expect(statuses).to.deep.equal([202, 202, 202, 202, 202, 202, 429]);
    expect(
      await h.container.redis.zscore(h.container.keys.coupon(couponId).queue, 'crowd-6'),
    ).to.equal(null);
  });

  it('when issue requests are answered before the accept script runs (a bad body, an unknown coupon), then they still count against the address', async () => {
    const address = fresh();
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const bad = await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
        body: { userId: 5 },
        headers: from(address),
      });
      const unknown = await http(h.baseUrl, 'POST', `/coupons/99999999/issue-requests`, {
        body: { userId: `nobody-${i}` },
        headers: from(address),
      });
      statuses.push(bad.status, unknown.status);
    }
    // Counted once the answer is on its way: wait for the sixth to reach Redis.
    const key = `${h.prefix}rl:ip:${address}`;
    await eventually(
      'the six counts',
      async () => Number(await h.container.redis.get(key)) >= 6 || undefined,
    );
    const refused = await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
      body: { userId: 'after-the-bad-ones' },
      headers: from(address),
    });

    expect(statuses).to.deep.equal([400, 404, 400, 404, 400, 404]);
    expectRateLimited(refused, 6);
    expect(
      await h.container.redis.zscore(h.container.keys.coupon(couponId).queue, 'after-the-bad-ones'),
    ).to.equal(null);
  });

  it('when a guarded issue request is admitted, then its address and user are counted by the accept script itself (one Redis command), and a user over the limit is then refused without asking Redis', async () => {
    const k = h.container.keys.coupon(couponId);
    const seen: string[][] = [];
    const monitor = await h.container.redis.duplicate().monitor();
    // Commands a script runs are shown too, with 'lua' as their source: only clients' count.
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') seen.push(args);
    });
    /** The commands Redis ran for one request: those naming a rate limit's key or this coupon's queue. */
    const commandsOf = async (send: () => Promise<HttpResult>) => {
      seen.length = 0;
      const res = await send();
      const marker = `marker-${Math.random()}`;
      await h.container.redis.echo(marker);
      await eventually(
        'the monitor to catch up',
        async () => seen.some((args) => args.includes(marker)) || undefined,
      );
      const mine = seen.filter((args) =>
        args.some((a) => a.startsWith(`${h.prefix}rl:`) || a === k.queue),
      );
      return { res, mine };
    };
    // The gate must be in Redis first: one that is not (its load at creation timed out on a
    // slow machine) is loaded by the first request, which then runs the script twice.
    const warm = await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
      body: { userId: 'loads-the-gate' },
      headers: from(fresh()),
    });
    expect(warm.status).to.equal(202);
    const address = fresh();
    const post = () =>
      http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
        body: { userId: 'counted-in-script' },
        headers: from(address),
      });
    try {
      const first = await commandsOf(post);
      expect(first.res.status).to.equal(202);
      expect(first.mine.map((args) => args[0]?.toLowerCase())).to.deep.equal(['evalsha']);
      expect(first.mine[0]).to.include.members([
        k.queue,
        `${h.prefix}rl:ip:${address}`,
        `${h.prefix}rl:accept:counted-in-script`,
      ]);

      // Two more use up the user's 3; the fourth is refused by the script, the fifth from memory.
      await post();
      await post();
      const fourth = await commandsOf(post);
      const fifth = await commandsOf(post);
      expectRateLimited(fourth.res, 3);
      expect(fourth.mine.map((args) => args[0]?.toLowerCase())).to.deep.equal(['evalsha']);
      expectRateLimited(fifth.res, 3);
      expect(fifth.mine).to.deep.equal([]);
      expect(
        Number(await h.container.redis.get(`${h.prefix}rl:accept:counted-in-script`)),
      ).to.equal(4);
    } finally {
      monitor.disconnect();
    }
  });

  it('when one address fails authentication as often as the limit allows, then its next request is 429 even with the right token, other addresses are served, and after the window it is served again', async () => {
    const address = fresh();
    const failures: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const res = await http(h.baseUrl, 'POST', `/coupons/${couponId}/close`, {
        headers: from(address, { authorization: 'Bearer wrong-token-0123456789' }),
      });
      failures.push(res.status);
    }
    // The failure is counted after the 401 is sent: wait for it to reach Redis.
    await eventually(
      'the third failure to be counted',
      async () =>
        Number(await h.container.redis.get(`${h.prefix}rl:auth:${address}`)) >= 3 || undefined,
    );
    const refused = await http(h.baseUrl, 'GET', `/coupons/${couponId}/consistency`, {
      headers: from(address, { authorization: `Bearer ${ADMIN_TOKEN}` }),
    });
    const other = await http(h.baseUrl, 'GET', `/coupons/${couponId}/consistency`, {
      headers: from(fresh(), { authorization: `Bearer ${ADMIN_TOKEN}` }),
    });

    expect(failures).to.deep.equal([401, 401, 401]);
    expectRateLimited(refused, 3);
    expect(other.status).to.equal(200);
    expect(
      (await h.container.pool.query('SELECT closed_at FROM coupons WHERE id = $1', [couponId]))
        .rows[0]?.closed_at ?? null,
    ).to.equal(null);

    await eventually('the window to end', async () => {
      const again = await http(h.baseUrl, 'GET', `/coupons/${couponId}/consistency`, {
        headers: from(address, { authorization: `Bearer ${ADMIN_TOKEN}` }),
      });
      return again.status === 200 || undefined;
    });
  });
});

describe('rate limits switched off', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ env: { RATE_LIMIT_ENABLED: 'false' } });
  });
  after(async () => {
    await h.cleanup();
  });

  it('when limits are off, then answers carry no RateLimit headers and nothing is counted in Redis', async () => {
    const res = await http(h.baseUrl, 'GET', '/healthz');

    expect(res.status).to.equal(200);
    expect(res.headers.get('ratelimit-limit')).to.equal(null);
    expect(await h.container.redis.keys(`${h.prefix}rl:*`)).to.deep.equal([]);
  });
});

describe('per-user status limit (the caller set by the identity middleware)', () => {
  let h: Harness;
  let server: Server;
  let baseUrl: string;

  before(async () => {
    // Only for its Redis connection and key space: the identity middleware is stood in for.
    h = await startHarness({});
    const prefix = h.container.keys.rateLimit('status');
    const limits = createLimits({
      status: redisLimiter(
        h.container.redis,
        'status',
        prefix,
        { points: 2, windowS: WINDOW_S },
        {
          onFallback: () => undefined,
        },
      ),
    });
    const app = express();
    app.get(
      '/as/:user',
      (req, res, next) => {
        res.locals.caller = { kind: 'user', userId: req.params.user };
        next();
      },
      limits.userLimit('status'),
      (_req, res) => {
        res.json({ ok: true });
      },
    );
    app.get(
      '/operator',
      (_req, res, next) => {
        res.locals.caller = { kind: 'operator', subject: 'ops' };
        next();
      },
      limits.userLimit('status'),
      (_req, res) => {
        res.json({ ok: true });
      },
    );
    app.use(errorHandler(h.container.api.logger));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await h.cleanup();
  });

  it('when an authenticated user reads status past their limit, then 429, another user is served, and operators are not limited per user', async () => {
    const alice = [];
    for (let i = 0; i < 3; i += 1) alice.push((await http(baseUrl, 'GET', '/as/alice')).status);
    const bob = await http(baseUrl, 'GET', '/as/bob');
    const operator = [];
    for (let i = 0; i < 4; i += 1) operator.push((await http(baseUrl, 'GET', '/operator')).status);

    expect(alice).to.deep.equal([200, 200, 429]);
    expect(bob.status).to.equal(200);
    expect(operator).to.deep.equal([200, 200, 200, 200]);
    expect(Number(await h.container.redis.get(`${h.prefix}rl:status:alice`))).to.equal(3);
  });
});

describe('rate limits while their Redis stalls (a private redis-server)', function () {
  this.timeout(60_000);
  let redis: PrivateRedis;
  let h: Harness;

  before(async () => {
    redis = await startPrivateRedis();
    h = await startHarness({
      env: {
        REDIS_URL: redis.url,
        REDIS_COMMAND_TIMEOUT_MS: '300',
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_IP_POINTS: '3',
        RATE_LIMIT_IP_WINDOW_S: '60',
      },
    });
  });
  after(async () => {
    if (redis.frozen) redis.thaw();
    await eventually('the service to reconnect', async () => {
      await h.container.redis.ping();
      return true;
    });
    await h.cleanup();
    await redis.stop();
  });

  it('when Redis stalls, then routes that need only PostgreSQL are still answered (fail open to a per-process count, with a warning), and that count still refuses past the limit', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Stalled limits', totalQuantity: 1 });

    redis.freeze();
    const statuses: number[] = [];
    try {
      for (let i = 0; i < 4; i += 1) {
        statuses.push((await http(h.baseUrl, 'GET', `/coupons/${couponId}`)).status);
      }
    } finally {
      redis.thaw();
    }

    // The process counts from zero in memory while Redis does not answer.
    expect(statuses).to.deep.equal([200, 200, 200, 429]);
    expect(h.logged.some((l) => l.message.includes('rate limiter Redis failed'))).to.equal(true);
  });
});
