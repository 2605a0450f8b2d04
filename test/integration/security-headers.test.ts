import { expect } from 'chai';
import { startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';

const SHOP = 'https://shop.example.com';
/** helmet's headers that govern an HTML document only: on the pages, not on API answers. */
const HTML_ONLY = [
  'cross-origin-opener-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
];

describe('security headers, no-store and CORS', () => {
  let h: Harness;
  let couponId: number;

  before(async () => {
    h = await startHarness({ env: { CORS_ORIGINS: `${SHOP},http://localhost:5173` } });
    couponId = await createCoupon(h.baseUrl, { name: 'Headers', totalQuantity: 10 });
  });
  after(async () => {
    await h.cleanup();
  });

  it("when the API answers, then it carries the API's security headers (OWASP's REST list) and none of the ones only an HTML document uses", async () => {
    const res = await http(h.baseUrl, 'GET', `/coupons/${couponId}`);
    const accepted = await requestIssue(h.baseUrl, couponId, 'headers-user');

    expect([res.status, accepted.status]).to.deep.equal([200, 202]);
    for (const answer of [res, accepted]) {
      expect(answer.headers.get('content-security-policy')).to.equal(
        "default-src 'none';frame-ancestors 'none'",
      );
      expect(answer.headers.get('x-content-type-options')).to.equal('nosniff');
      expect(answer.headers.get('x-frame-options')).to.equal('DENY');
      expect(answer.headers.get('strict-transport-security')).to.match(/^max-age=\d+/);
      expect(answer.headers.get('cross-origin-resource-policy')).to.equal('same-origin');
      expect(answer.headers.get('cache-control')).to.equal('no-store');
      expect(answer.headers.get('x-powered-by')).to.equal(null);
      for (const documentOnly of HTML_ONLY) {
        expect(answer.headers.get(documentOnly), documentOnly).to.equal(null);
      }
    }
  });

  it("when a page or its assets are served (/docs, /dashboard), then helmet's document headers are there too, beside the page's own policy", async () => {
    const pages = await Promise.all(
      ['/docs', '/docs/assets/init.js', '/dashboard', '/dashboard/assets/dashboard.js'].map(
        (path) => http(h.baseUrl, 'GET', path),
      ),
    );

    for (const page of pages) {
      expect(page.status).to.equal(200);
      for (const documentOnly of HTML_ONLY) {
        expect(page.headers.get(documentOnly), documentOnly).to.not.equal(null);
      }
      expect(page.headers.get('referrer-policy')).to.equal('no-referrer');
      expect(page.headers.get('x-content-type-options')).to.equal('nosniff');
      expect(page.headers.get('x-frame-options')).to.equal('DENY');
      expect(page.headers.get('content-security-policy')).to.include("script-src 'self'");
    }
  });

  it("when answers carry a user's or an operator's data, then they are Cache-Control: no-store", async () => {
    const created = await http(h.baseUrl, 'POST', '/coupons', {
      body: { name: 'Stored nowhere', totalQuantity: 1 },
      admin: true,
    });
    const accepted = await requestIssue(h.baseUrl, couponId, 'no-store-user');
    const status = await http(h.baseUrl, 'GET', `/issue-requests/${accepted.body.requestId}`);
    const operator = await http(h.baseUrl, 'GET', `/coupons/${couponId}/consistency`, {
      admin: true,
    });
    const problem = await http(h.baseUrl, 'GET', '/issue-requests/nope');

    expect([created.status, accepted.status, status.status, operator.status]).to.deep.equal([
      201, 202, 200, 200,
    ]);
    for (const res of [created, accepted, status, operator, problem]) {
      expect(res.headers.get('cache-control')).to.equal('no-store');
    }
  });

  it('when an allowed origin sends a preflight, then 204 with its origin, the methods of the path and the request headers, and nothing is queued', async () => {
    const path = `/coupons/${couponId}/issue-requests`;
    const queued = await h.container.redis.zcard(h.container.keys.coupon(couponId).queue);

    const res = await http(h.baseUrl, 'OPTIONS', path, {
      headers: {
        origin: SHOP,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });

    expect(res.status).to.equal(204);
    expect(res.headers.get('access-control-allow-origin')).to.equal(SHOP);
    expect(res.headers.get('access-control-allow-methods')).to.equal('POST,OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).to.equal('Authorization,Content-Type');
    expect(res.headers.get('access-control-max-age')).to.equal('600');
    expect(res.headers.get('vary')).to.match(/Origin/);
    expect(await h.container.redis.zcard(h.container.keys.coupon(couponId).queue)).to.equal(queued);
  });

  it('when a refused origin sends a preflight, then no CORS header is sent (the browser blocks the call)', async () => {
    const res = await http(h.baseUrl, 'OPTIONS', `/coupons/${couponId}/issue-requests`, {
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });

    expect(res.status).to.equal(204);
    expect(res.headers.get('access-control-allow-origin')).to.equal(null);
    expect(res.headers.get('access-control-allow-methods')).to.equal(null);
    expect(res.headers.get('allow')).to.equal('POST, OPTIONS');
  });

  it('when OPTIONS comes without an Origin, then 204 with Allow; on a path no route has, 404', async () => {
    const known = await http(h.baseUrl, 'OPTIONS', `/coupons/${couponId}`);
    const unknown = await http(h.baseUrl, 'OPTIONS', '/nothing/here', {
      headers: { origin: SHOP, 'access-control-request-method': 'GET' },
    });

    expect(known.status).to.equal(204);
    expect(known.headers.get('allow')).to.equal('GET, HEAD, PATCH, OPTIONS');
    expect(known.headers.get('access-control-allow-origin')).to.equal(null);
    expect([unknown.status, unknown.body.code]).to.deep.equal([404, 'NOT_FOUND']);
    expect(unknown.headers.get('access-control-allow-origin')).to.equal(null);
  });

  it('when an allowed origin calls the API, then the answer names it and exposes Location and the limit headers; a refused origin gets no CORS header', async () => {
    const allowed = await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
      body: { userId: 'browser-user' },
      headers: { origin: SHOP },
    });
    const refused = await http(h.baseUrl, 'GET', `/coupons/${couponId}`, {
      headers: { origin: 'https://evil.example' },
    });

    expect(allowed.status).to.equal(202);
    expect(allowed.headers.get('access-control-allow-origin')).to.equal(SHOP);
    expect(allowed.headers.get('access-control-expose-headers')).to.include('Location');
    expect(allowed.headers.get('access-control-expose-headers')).to.include('Retry-After');
    expect(refused.status).to.equal(200);
    expect(refused.headers.get('access-control-allow-origin')).to.equal(null);
  });
});

describe('CORS by default', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.cleanup();
  });

  it('when CORS_ORIGINS is not set, then no origin gets a CORS header, preflight included', async () => {
    const res = await http(h.baseUrl, 'OPTIONS', '/coupons', {
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' },
    });

    expect(res.status).to.equal(204);
    expect(res.headers.get('access-control-allow-origin')).to.equal(null);
  });
});
