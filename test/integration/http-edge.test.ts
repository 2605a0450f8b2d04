import { expect } from 'chai';
import { connect } from 'node:net';
import { ROUTES } from '../../src/api/routes/route-table.js';
import { ADMIN_TOKEN, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http } from '../support/http.js';
import { hasWholeResponse, parseResponse, RawConnection } from '../support/raw-http.js';
import { snapshot } from '../support/state.js';

/** Sends raw bytes and returns everything the server answers before it closes. */
function rawExchange(baseUrl: string, bytes: string): Promise<string> {
  const { port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(bytes));
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

describe('HTTP below Express', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.cleanup();
  });

  it('when the URL is larger than Node accepts, then 431 problem+json with a stable code, and nothing changes', async () => {
    const before = await snapshot(h.container, h.prefix);

    const res = await http(h.baseUrl, 'GET', `/coupons/${'9'.repeat(20_000)}`);

    expect(res.status).to.equal(431);
    expect(res.contentType).to.match(/^application\/problem\+json/);
    expect(res.body).to.include({ code: 'HEADERS_TOO_LARGE', status: 431 });
    expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
  });

  it('when the bytes are not HTTP, then 400 problem+json', async () => {
    const answer = await rawExchange(h.baseUrl, 'HELLO THERE\r\n\r\n');

    expect(answer).to.match(/^HTTP\/1\.1 400 /);
    expect(answer).to.match(/Content-Type: application\/problem\+json/);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).to.include({
      code: 'BAD_REQUEST',
      status: 400,
    });
  });

  it('when a body field is bad, then the error names the field as the client sent it', async () => {
    const res = await http(h.baseUrl, 'POST', '/coupons', {
      admin: true,
      body: { name: 'x', totalQuantity: 0 },
    });

    expect(res.status).to.equal(400);
    expect((res.body.errors as { path: string }[]).map((e) => e.path)).to.deep.equal([
      'totalQuantity',
    ]);
  });

  it('when a path is spelled in another case, then it is not found and nothing runs', async () => {
    const couponId = (
      await http<{ id: number }>(h.baseUrl, 'POST', '/coupons', {
        admin: true,
        body: { name: 'Case', totalQuantity: 1 },
      })
    ).body.id;
    const before = await snapshot(h.container, h.prefix);

    const res = await http(h.baseUrl, 'POST', `/coupons/${couponId}/SYNC`, { admin: true });

    expect([res.status, res.body.code]).to.deep.equal([404, 'NOT_FOUND']);
    expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
  });
});

describe('routes: 404 or 405 with Allow, from one table', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.cleanup();
  });

  const cases: [method: string, path: string, allow: string][] = [
    ['DELETE', '/coupons', 'GET, HEAD, POST'],
    ['PUT', '/coupons', 'GET, HEAD, POST'],
    ['PUT', '/coupons/1', 'GET, HEAD, PATCH'],
    ['GET', '/coupons/1/pause', 'POST'],
    ['DELETE', '/coupons/1/open', 'POST'],
    ['GET', '/coupons/1/resume', 'POST'],
    ['POST', '/coupons/1/stats', 'GET, HEAD'],
    ['POST', '/coupons/1/', 'GET, HEAD, PATCH'],
    ['GET', '/coupons/1/issue-requests', 'POST'],
    ['GET', '/coupons/1/close', 'POST'],
    ['DELETE', '/coupons/1/sync', 'POST'],
    ['POST', '/coupons/1/consistency', 'GET, HEAD'],
    ['POST', '/issue-requests/1-abc-def', 'GET, HEAD'],
    ['PATCH', '/health', 'GET, HEAD'],
  ];
  for (const [method, path, allow] of cases) {
    it(`when ${method} ${path} is sent, then 405 with Allow: ${allow}, and nothing changes`, async () => {
      await createCoupon(h.baseUrl, { name: 'Allow', totalQuantity: 1 });
      const before = await snapshot(h.container, h.prefix);

      const res = await http(h.baseUrl, method, path, { admin: true });

      expect([res.status, res.body.code]).to.deep.equal([405, 'METHOD_NOT_ALLOWED']);
      expect(res.headers.get('allow')).to.equal(allow);
      expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
    });
  }

  it('when a path no route has is asked for, then 404 without Allow', async () => {
    const res = await http(h.baseUrl, 'DELETE', '/coupons/1/nothing');

    expect([res.status, res.body.code]).to.deep.equal([404, 'NOT_FOUND']);
    expect(res.headers.get('allow')).to.equal(null);
  });

  it('when each row of the route table is asked for with its method, then a handler answers (neither 404 NOT_FOUND nor 405)', async () => {
    for (const route of Object.values(ROUTES)) {
      const path = route.path.replace(/:[A-Za-z]+/g, '999');
      const res = await http(
        h.baseUrl,
        route.method,
        path,
        route.method === 'GET' ? {} : { raw: '{}' },
      );

      expect(res.body.code, `${route.method} ${route.path}`).not.to.be.oneOf([
        'NOT_FOUND',
        'METHOD_NOT_ALLOWED',
      ]);
    }
  });
});

describe('the operator token scheme', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.cleanup();
  });

  for (const [i, authorization] of [
    `bearer ${ADMIN_TOKEN}`,
    `BEARER ${ADMIN_TOKEN}`,
    `bEaReR ${ADMIN_TOKEN}`,
    `Bearer  ${ADMIN_TOKEN}`,
  ].entries()) {
    it(`when the token is sent as "${authorization.replace(ADMIN_TOKEN, '<token>')}", then the scheme is accepted (RFC 9110) and the coupon is created`, async () => {
      const name = `Scheme ${i}`;

      const res = await http<{ id: number }>(h.baseUrl, 'POST', '/coupons', {
        headers: { authorization },
        body: { name, totalQuantity: 5 },
      });

      expect(res.status).to.equal(201);
      const { rows } = await h.container.pool.query('SELECT name FROM coupons WHERE id = $1', [
        res.body.id,
      ]);
      expect(rows).to.deep.equal([{ name }]);
    });
  }
});

describe('slow and numerous clients', () => {
  const HEADERS_TIMEOUT_MS = 300;
  const REQUEST_TIMEOUT_MS = 600;
  let h: Harness;
  const open: RawConnection[] = [];

  before(async () => {
    h = await startHarness({
      env: {
        HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      },
    });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.destroy();
  });
  after(async () => {
    await h.cleanup();
  });

  async function connectRaw(harness: Harness = h): Promise<RawConnection> {
    const c = await RawConnection.open(harness.baseUrl);
    open.push(c);
    return c;
  }

  function expectTimeoutProblem(raw: string): void {
    const res = parseResponse(raw);
    expect(res.status, raw).to.equal(408);
    expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
    expect(res.headers.connection).to.equal('close');
    expect(JSON.parse(res.body)).to.include({ code: 'REQUEST_TIMEOUT', status: 408 });
  }

  it('when a client stops halfway through its headers, then 408 problem+json after the headers timeout and the connection is closed', async () => {
    const c = await connectRaw();

    c.write('GET /health HTTP/1.1\r\nHost: coupons\r\n');

    expectTimeoutProblem(await c.untilClosed());
  });

  it('when a client stops halfway through its body, then 408 problem+json after the request timeout, the connection is closed and nothing is queued', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Slow body', totalQuantity: 5 });
    const before = await snapshot(h.container, h.prefix);
    const c = await connectRaw();
    const body = JSON.stringify({ userId: 'slow-user' });

    c.write(
      `POST /coupons/${couponId}/issue-requests HTTP/1.1\r\nHost: coupons\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
    );

    expectTimeoutProblem(await c.untilClosed());
    expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
  });

  it('when a kept-alive connection idles longer than the headers timeout between requests, then its next request is still answered', async () => {
    const c = await connectRaw();
    const get = 'GET /health HTTP/1.1\r\nHost: coupons\r\n\r\n';
    c.write(get);
    const first = await c.until(hasWholeResponse, 'the first answer');
    expect(parseResponse(first).status).to.equal(200);

    await new Promise((resolve) => setTimeout(resolve, REQUEST_TIMEOUT_MS * 3));
    c.received = '';
    c.write(get);

    const second = await c.until(hasWholeResponse, 'the second answer');
    expect(parseResponse(second).status).to.equal(200);
  });

  it('when a body over the limit is announced with Expect: 100-continue, then 413 problem+json at once, without 100 Continue, and the connection is closed', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Expect', totalQuantity: 5 });
    const before = await snapshot(h.container, h.prefix);
    const c = await connectRaw();

    c.write(
      `POST /coupons/${couponId}/issue-requests HTTP/1.1\r\nHost: coupons\r\n` +
        'Content-Type: application/json\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n',
    );

    // Well inside the request timeout: the answer cannot be the 408.
    const raw = await c.untilClosed(REQUEST_TIMEOUT_MS / 2);
    expect(raw).not.to.contain('100 Continue');
    const res = parseResponse(raw);
    expect(res.status, raw).to.equal(413);
    expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
    expect(JSON.parse(res.body)).to.include({ code: 'PAYLOAD_TOO_LARGE', status: 413 });
    expect(await snapshot(h.container, h.prefix)).to.deep.equal(before);
  });

  it('when a body within the limit is announced with Expect: 100-continue, then 100 Continue, and the request is queued once the body is sent', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Continue', totalQuantity: 5 });
    const c = await connectRaw();
    const body = JSON.stringify({ userId: 'patient-user' });

    c.write(
      `POST /coupons/${couponId}/issue-requests HTTP/1.1\r\nHost: coupons\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
    );
    await c.until((r) => r.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), '100 Continue');
    c.received = '';
    c.write(body);

    const res = parseResponse(await c.until(hasWholeResponse, 'the answer'));
    expect(res.status).to.equal(202);
    const queued = await h.container.redis.zrange(
      h.container.keys.coupon(couponId).queue,
      '0',
      '-1',
    );
    expect(queued).to.deep.equal(['patient-user']);
  });

  it('when the connection cap is reached, then further connections are closed unanswered until one is freed', async () => {
    const capped = await startHarness({ env: { HTTP_MAX_CONNECTIONS: '2' } });
    try {
      const get = 'GET /health HTTP/1.1\r\nHost: coupons\r\n\r\n';
      const held: RawConnection[] = [];
      for (let i = 0; i < 2; i += 1) {
        const c = await connectRaw(capped);
        c.write(get);
        // Answered, so the server counts the connection; it stays open (keep-alive).
        await c.until(hasWholeResponse, `answer ${i + 1}`);
        held.push(c);
      }

      const third = await connectRaw(capped);
      third.write(get);
      expect(await third.untilClosed()).to.equal('');

      held[0]?.destroy();
      const deadline = Date.now() + 10_000;
      let answer = '';
      while (answer === '' && Date.now() < deadline) {
        const next = await connectRaw(capped);
        next.write(get);
        answer = await next.until(hasWholeResponse, 'an answer').catch(() => '');
      }
      expect(parseResponse(answer).status).to.equal(200);
    } finally {
      for (const c of open.splice(0)) c.destroy();
      await capped.cleanup();
    }
  });
});
