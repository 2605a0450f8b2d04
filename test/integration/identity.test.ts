import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import {
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http } from '../support/http.js';
import { couponState, snapshot } from '../support/state.js';
import { bearer, JWT_SECRET, userToken } from '../support/tokens.js';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

function issue(h: Harness, couponId: number, headers: Record<string, string>, body: unknown = {}) {
  return http<{ requestId: string; userId: string; code?: string }>(
    h.baseUrl,
    'POST',
    `/coupons/${couponId}/issue-requests`,
    { body, headers },
  );
}

/** Nothing of the coupon queued in Redis or recorded in PostgreSQL. */
async function expectNothingQueued(h: Harness, couponId: number): Promise<void> {
  const state = await couponState(h.container, couponId);
  expect([state.queued, state.inflight, state.pendingRecords]).to.deep.equal([0, 0, 0]);
  expect(state.requestRows).to.deep.equal([]);
  expect(await h.container.redis.hlen(h.container.keys.coupon(couponId).requests)).to.equal(0);
}

function expectUnauthorized(
  res: { status: number; headers: Headers; contentType: string; body: { code?: string } },
  code: 'UNAUTHORIZED' | 'INVALID_TOKEN',
): void {
  expect(res.status, JSON.stringify(res.body)).to.equal(401);
  expect(res.contentType).to.match(/^application\/problem\+json/);
  expect(res.body.code).to.equal(code);
  expect(res.headers.get('www-authenticate')).to.equal(
    code === 'UNAUTHORIZED' ? 'Bearer' : 'Bearer error="invalid_token"',
  );
}

describe('identity: bearer tokens with JWT_SECRET', function () {
  this.timeout(60_000);
  let h: Harness;
  let couponId: number;

  before(async () => {
    h = await startHarness({
      env: { JWT_SECRET, JWT_ISSUER: 'https://id.example', JWT_AUDIENCE: 'coupons' },
    });
    couponId = await createCoupon(h.baseUrl, { name: 'Identity', totalQuantity: 10 });
  });
  after(async () => h?.cleanup());

  const good = (sub: string, claims: JWTPayload = {}) =>
    userToken(sub, { iss: 'https://id.example', aud: 'coupons', ...claims });

  const badTokens: [string, () => Promise<string | undefined> | string | undefined][] = [
    ['no Authorization header', () => undefined],
    ['a malformed token', () => 'Bearer not.a.jwt'],
    ['Basic credentials', () => `Basic ${Buffer.from('alice:pw').toString('base64')}`],
    ['"Bearer" and no token', () => 'Bearer'],
    ['an expired token', async () => `Bearer ${await good('alice', { exp: 1_000_000_000 })}`],
    ['a token without exp', async () => `Bearer ${await good('alice', { exp: undefined })}`],
    [
      'a token signed with another secret',
      async () =>
        `Bearer ${await userToken('alice', { iss: 'https://id.example', aud: 'coupons' }, 'another-secret-0123456789abcdef01234')}`,
    ],
    ['a token for another audience', async () => `Bearer ${await good('alice', { aud: 'else' })}`],
    [
      'a token from another issuer',
      async () => `Bearer ${await good('alice', { iss: 'https://evil.example' })}`,
    ],
    [
      'an unsigned token (alg none)',
      () =>
        `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', iss: 'https://id.example', aud: 'coupons', exp: inAnHour() })}.`,
    ],
    ['a token whose sub breaks the user id rules', async () => `Bearer ${await good('a b/c')}`],
    ['a token without sub', async () => `Bearer ${await good('alice', { sub: undefined })}`],
    ['a token not yet valid', async () => `Bearer ${await good('alice', { nbf: inAnHour() })}`],
  ];

  for (const [when, make] of badTokens) {
    it(`when the accept endpoint gets ${when}, then it answers 401 with WWW-Authenticate and queues nothing`, async () => {
      const authorization = await make();
      const res = await issue(h, couponId, authorization ? { authorization } : {}, {
        userId: 'alice',
      });
      expectUnauthorized(res, authorization === undefined ? 'UNAUTHORIZED' : 'INVALID_TOKEN');
      // The reason is logged (an audit line), never answered.
      expect(JSON.stringify(res.body)).not.to.match(/expired|signature|audience|issuer|alg/i);
      await expectNothingQueued(h, couponId);
    });
  }

  it('when a token fails, then an audit line says so with the reason and without the token', async () => {
    const token = await good('alice', { exp: 1_000_000_000 });
    const before = h.logged.length;
    await issue(h, couponId, bearer(token));
    const lines = h.logged.slice(before).filter((l) => l.message === 'audit');
    expect(lines).to.have.length(1);
    expect(lines[0]?.meta).to.include({
      event: 'authentication',
      outcome: 'failed',
      code: 'INVALID_TOKEN',
    });
    expect(String(lines[0]?.meta.reason)).to.match(/expired/i);
    expect(JSON.stringify(lines)).not.to.contain(token);
    expect(JSON.stringify(lines)).not.to.contain(token.split('.')[2]);
  });

  it('when a valid token comes without a body userId or with the same one, then the user is the token subject', async () => {
    const own = await createCoupon(h.baseUrl, { name: 'Own', totalQuantity: 5 });
    const a = await issue(h, own, bearer(await good('dora')));
    expect(a.status, JSON.stringify(a.body)).to.equal(202);
    expect(a.body.userId).to.equal('dora');
    const b = await issue(h, own, bearer(await good('erin')), { userId: 'erin' });
    expect(b.status, JSON.stringify(b.body)).to.equal(202);
    await drainAll(h.container);
    const state = await couponState(h.container, own);
    expect(state.issuedRows.map((r) => r.userId).sort()).to.deep.equal(['dora', 'erin']);
  });

  it('when the body names another user than the token, then 403 USER_MISMATCH and nothing is queued', async () => {
    const res = await issue(h, couponId, bearer(await good('alice')), { userId: 'bob' });
    expect(res.status).to.equal(403);
    expect(res.body.code).to.equal('USER_MISMATCH');
    await expectNothingQueued(h, couponId);
  });

  it("when a user asks for another user's request, then the answer is the 404 of an id that does not exist, byte for byte but for the id it names", async () => {
    const own = await createCoupon(h.baseUrl, { name: 'Owner', totalQuantity: 5 });
    const accepted = await issue(h, own, bearer(await good('frank')));
    const id = accepted.body.requestId;
    // The same shape of id, with another nonce: one that does not exist.
    const unknown = `${id.slice(0, -10)}ZZZZZZZZZZ`;
    const mallory = bearer(await good('mallory'));

    const raw = async (requestId: string) => {
      const res = await fetch(`${h.baseUrl}/issue-requests/${requestId}`, { headers: mallory });
      const headers = Object.fromEntries(
        // Every answer has its own date and request id.
        [...res.headers].filter(
          ([name]) => name !== 'date' && name !== 'content-length' && name !== 'x-request-id',
        ),
      );
      return { status: res.status, headers, text: await res.text() };
    };
    // The unknown id's answer, with the id it names swapped for the real one: byte for byte
    // what the other user gets (the id appears in `instance` and in the detail).
    const asUnknown = async () => {
      const missing = await raw(unknown);
      return { ...missing, text: missing.text.replaceAll(unknown, id) };
    };
    const pendingOther = await raw(id);
    expect(pendingOther.status).to.equal(404);
    expect(pendingOther).to.deep.equal(await asUnknown());

    // Decided, too: still not theirs.
    await drainAll(h.container);
    expect(await raw(id)).to.deep.equal(await asUnknown());

    // The owner and operators see it.
    const mine = await http(h.baseUrl, 'GET', `/issue-requests/${id}`, {
      headers: bearer(await good('frank')),
    });
    expect(mine.status).to.equal(200);
    expect(mine.body.status).to.equal('ISSUED');
    const admin = await http(h.baseUrl, 'GET', `/issue-requests/${id}`, { admin: true });
    expect(admin.status).to.equal(200);
    const operator = await http(h.baseUrl, 'GET', `/issue-requests/${id}`, {
      headers: bearer(await good('olga', { roles: ['operator'] })),
    });
    expect(operator.status).to.equal(200);
    const anonymous = await http(h.baseUrl, 'GET', `/issue-requests/${id}`);
    expectUnauthorized(anonymous, 'UNAUTHORIZED');
  });

  it('when a user token is sent to an operator route, then 403 FORBIDDEN and nothing changes', async () => {
    const userHeaders = bearer(await good('alice'));
    const before = await snapshot(h.container, h.prefix);
    const attempts = [
      await http(h.baseUrl, 'POST', '/coupons', {
        body: { name: 'Mine', totalQuantity: 5 },
        headers: userHeaders,
      }),
      await http(h.baseUrl, 'POST', `/coupons/${couponId}/close`, { headers: userHeaders }),
      await http(h.baseUrl, 'POST', `/coupons/${couponId}/sync`, { headers: userHeaders }),
      await http(h.baseUrl, 'GET', `/coupons/${couponId}/consistency`, { headers: userHeaders }),
    ];
    for (const res of attempts) {
      expect(res.status, JSON.stringify(res.body)).to.equal(403);
      expect(res.body.code).to.equal('FORBIDDEN');
    }
    expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
  });

  it('when an operator token (roles claim) or ADMIN_TOKEN is sent to an operator route, then it is allowed, and its actions (not its reads) are audited', async () => {
    const before = h.logged.length;
    const byJwt = await http<{ id: number }>(h.baseUrl, 'POST', '/coupons', {
      body: { name: 'By operator JWT', totalQuantity: 5 },
      headers: bearer(await good('olga', { roles: 'operator' })),
    });
    expect(byJwt.status, JSON.stringify(byJwt.body)).to.equal(201);
    const byAdmin = await http(h.baseUrl, 'POST', `/coupons/${byJwt.body.id}/close`, {
      admin: true,
    });
    expect(byAdmin.status, JSON.stringify(byAdmin.body)).to.equal(200);
    // A read is not an action: not audited.
    const read = await http(h.baseUrl, 'GET', `/coupons/${byJwt.body.id}/stats`, { admin: true });
    expect(read.status, JSON.stringify(read.body)).to.equal(200);
    const { rows } = await h.container.pool.query('SELECT name FROM coupons WHERE id = $1', [
      byJwt.body.id,
    ]);
    expect(rows).to.deep.equal([{ name: 'By operator JWT' }]);
    const audits = h.logged
      .slice(before)
      .filter((l) => l.message === 'audit')
      .map((l) => l.meta);
    expect(audits).to.have.length(2);
    expect(audits[0]).to.include({
      event: 'operator-action',
      outcome: 'done',
      actor: 'olga',
      method: 'POST',
      path: '/coupons',
      status: 201,
    });
    expect(audits[1]).to.include({
      event: 'operator-action',
      actor: 'admin-token',
      path: `/coupons/${byJwt.body.id}/close`,
      status: 200,
    });
  });

  it('when npm run token mints a user token and an operator token, then the service takes them as such', async () => {
    const mint = async (...args: string[]) =>
      (
        await promisify(execFile)(
          process.execPath,
          ['--import', 'tsx', 'scripts/token.ts', ...args],
          {
            env: {
              PATH: process.env.PATH ?? '',
              JWT_SECRET,
              JWT_ISSUER: 'https://id.example',
              JWT_AUDIENCE: 'coupons',
            },
          },
        )
      ).stdout.trim();
    const [user, operator] = await Promise.all([
      mint('minted-user', '--ttl', '5m'),
      mint('minted-operator', '--operator'),
    ]);
    const own = await createCoupon(h.baseUrl, { name: 'Minted', totalQuantity: 5 });
    const accepted = await issue(h, own, bearer(user));
    expect(accepted.status, JSON.stringify(accepted.body)).to.equal(202);
    expect(accepted.body.userId).to.equal('minted-user');
    expect(
      (await http(h.baseUrl, 'GET', `/coupons/${own}/consistency`, { headers: bearer(user) }))
        .status,
    ).to.equal(403);
    const checked = await http(h.baseUrl, 'GET', `/coupons/${own}/consistency`, {
      headers: bearer(operator),
    });
    expect(checked.status, JSON.stringify(checked.body)).to.equal(200);
  });

  it('when a flood of made-up users arrives without tokens, then every request is refused at 401 and none reaches the queue', async () => {
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        issue(h, couponId, {}, { userId: `bot-${i}` }).then((r) => r.status),
      ),
    );
    expect(new Set(answers)).to.deep.equal(new Set([401]));
    await expectNothingQueued(h, couponId);
    expect((await couponState(h.container, couponId)).redisStock).to.equal(10);
  });
});

describe('identity: bearer tokens with JWT_JWKS_URL', function () {
  this.timeout(60_000);
  let h: Harness;
  let jwks: Server;
  let couponId: number;
  const keys: Record<'RS256' | 'ES256', CryptoKey> = {} as never;

  before(async () => {
    const published: JWK[] = [];
    for (const alg of ['RS256', 'ES256'] as const) {
      const pair = await generateKeyPair(alg);
      keys[alg] = pair.privateKey;
      published.push({ ...(await exportJWK(pair.publicKey)), kid: alg, alg, use: 'sig' });
    }
    jwks = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const { port } = jwks.address() as AddressInfo;
    h = await startHarness({ env: { JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` } });
    couponId = await createCoupon(h.baseUrl, { name: 'JWKS', totalQuantity: 10 });
  });
  after(async () => {
    await h?.cleanup();
    jwks?.close();
  });

  const signed = (alg: 'RS256' | 'ES256', sub: string) =>
    new SignJWT({ sub, exp: inAnHour() }).setProtectedHeader({ alg, kid: alg }).sign(keys[alg]);

  for (const alg of ['RS256', 'ES256'] as const) {
    it(`when a ${alg} token signed with a published key comes, then the request is accepted for its subject`, async () => {
      const res = await issue(h, couponId, bearer(await signed(alg, `jwks-${alg}`)));
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      const state = await couponState(h.container, couponId);
      expect(state.queued).to.be.greaterThan(0);
      expect(
        await h.container.redis.zscore(h.container.keys.coupon(couponId).queue, `jwks-${alg}`),
      ).to.not.equal(null);
    });
  }

  it('when an HS256 token comes where keys are published (algorithm switching), then 401 and nothing queued', async () => {
    const fresh = await createCoupon(h.baseUrl, { name: 'Switch', totalQuantity: 10 });
    // Signed with the secret other deployments use, and with the public key's bytes as an HMAC key.
    const jwk = (await fetch(`http://127.0.0.1:${(jwks.address() as AddressInfo).port}/`).then(
      (r) => r.json(),
    )) as { keys: Record<string, string>[] };
    for (const secret of [JWT_SECRET, JSON.stringify(jwk.keys[0])]) {
      const token = await new SignJWT({ sub: 'switcher', exp: inAnHour() })
        .setProtectedHeader({ alg: 'HS256', kid: 'RS256' })
        .sign(new TextEncoder().encode(secret));
      expectUnauthorized(await issue(h, fresh, bearer(token)), 'INVALID_TOKEN');
    }
    const forged = `${b64({ alg: 'none', kid: 'RS256' })}.${b64({ sub: 'switcher', exp: inAnHour() })}.`;
    expectUnauthorized(await issue(h, fresh, bearer(forged)), 'INVALID_TOKEN');
    await expectNothingQueued(h, fresh);
  });

  it('when a token is signed with a key that is not published, then 401 and nothing queued', async () => {
    const fresh = await createCoupon(h.baseUrl, { name: 'Unknown key', totalQuantity: 10 });
    const other = await generateKeyPair('ES256');
    const token = await new SignJWT({ sub: 'stranger', exp: inAnHour() })
      .setProtectedHeader({ alg: 'ES256', kid: 'ES256' })
      .sign(other.privateKey);
    expectUnauthorized(await issue(h, fresh, bearer(token)), 'INVALID_TOKEN');
    await expectNothingQueued(h, fresh);
  });
});

describe('identity: JWT_JWKS_URL unreachable', function () {
  this.timeout(60_000);
  let h: Harness;

  before(async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    h = await startHarness({ env: { JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` } });
  });
  after(async () => h?.cleanup());

  it('when the keys cannot be fetched, then a token is answered 503 (an outage, not a bad token) and nothing is queued', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'No keys', totalQuantity: 5 });
    const { privateKey } = await generateKeyPair('ES256');
    const token = await new SignJWT({ sub: 'patient', exp: inAnHour() })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(privateKey);
    const res = await issue(h, couponId, bearer(token));
    expect(res.status, JSON.stringify(res.body)).to.equal(503);
    expect(res.body.code).to.equal('DEPENDENCY_UNAVAILABLE');
    await expectNothingQueued(h, couponId);
  });
});
