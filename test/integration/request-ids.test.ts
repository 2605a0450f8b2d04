import { expect } from 'chai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import winston from 'winston';
import Transport from 'winston-transport';
import type { AccessLogSettings } from '../../src/api/access-log.js';
import { createApp } from '../../src/api/app.js';
import { listen } from '../../src/api/server.js';
import { DependencyUnavailableError } from '../../src/domain/errors.js';
import type { IssueGate } from '../../src/domain/ports.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';
import { parseResponse, RawConnection } from '../support/raw-http.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Coupons of this size find Redis down when their gate is first loaded. */
const UNLOADABLE_QUANTITY = 13;

/**
 * A gate that fails for two made-up users (a bug, an outage) and for loading coupons of
 * UNLOADABLE_QUANTITY, and is the real one otherwise.
 */
function failingFor(real: IssueGate): IssueGate {
  return {
    accept: (couponId, userId, nonce) => {
      if (userId === 'user-bug') return Promise.reject(new TypeError('a bug in the gate'));
      if (userId === 'user-outage') {
        return Promise.reject(new DependencyUnavailableError('redis', new Error('gone')));
      }
      return real.accept(couponId, userId, nonce);
    },
    load: (state) =>
      state.totalQuantity === UNLOADABLE_QUANTITY
        ? Promise.reject(new DependencyUnavailableError('redis', new Error('gone')))
        : real.load(state),
    close: (couponId) => real.close(couponId),
    pending: (ref) => real.pending(ref),
  };
}

type Line = { level: string; message: string; meta: Record<string, unknown> };

class Capture extends Transport {
  constructor(private readonly lines: Line[]) {
    super();
  }
  override log(info: Record<string, unknown>, callback: () => void): void {
    const { level, message, ...meta } = info;
    this.lines.push({ level: String(level), message: String(message), meta });
    callback();
  }
}

/** The harness's container behind another app, with its own access log settings and log. */
async function appWith(
  h: Harness,
  accessLog: AccessLogSettings,
): Promise<{ baseUrl: string; lines: Line[]; close(): Promise<void> }> {
  const lines: Line[] = [];
  const logger = winston.createLogger({ level: 'info', transports: [new Capture(lines)] });
  const server: Server = await listen(
    createApp({ ...h.container.api, logger, accessLog }),
    0,
    '127.0.0.1',
    h.container.config.http,
  );
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    lines,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Polls until `check` passes: a line is written when the answer finishes, not before the client reads it. */
const logged = (check: () => void): Promise<boolean> =>
  eventually(
    'the log lines',
    async () => {
      check();
      return true;
    },
    5_000,
  );

describe('request ids and access lines', () => {
  let h: Harness;
  let couponId: number;

  before(async () => {
    h = await startHarness({ env: { ACCESS_LOG: 'all' }, overrides: { gate: failingFor } });
    couponId = await createCoupon(h.baseUrl, { name: 'Ids', totalQuantity: 10 });
  });
  after(async () => {
    await h.cleanup();
  });

  const linesOf = (id: string) => h.logged.filter((l) => l.meta.httpRequestId === id);

  describe('X-Request-Id', () => {
    it('when a request carries a sane id, then the answer echoes it and its request is queued', async () => {
      const res = await http<{ requestId: string }>(
        h.baseUrl,
        'POST',
        `/coupons/${couponId}/issue-requests`,
        { body: { userId: 'user-1' }, headers: { 'x-request-id': 'edge-42.a:b_c' } },
      );

      expect(res.status).to.equal(202);
      expect(res.headers.get('x-request-id')).to.equal('edge-42.a:b_c');
      // The issue request's own id is another thing, and the answer still carries it.
      expect(res.body.requestId).to.not.equal('edge-42.a:b_c');
      const status = await http(h.baseUrl, 'GET', `/issue-requests/${res.body.requestId}`);
      expect(status.body.status).to.equal('PENDING');
    });

    it('when an operator acts with a sane id, then the audit line carries it', async () => {
      const id = 'audit-0001';
      const res = await http(h.baseUrl, 'POST', `/coupons/${couponId}/pause`, {
        admin: true,
        headers: { 'x-request-id': id },
      });

      expect(res.status).to.equal(200);
      expect(res.headers.get('x-request-id')).to.equal(id);
      await logged(() =>
        expect(linesOf(id).find((l) => l.message === 'audit')?.meta).to.include({
          event: 'operator-action',
          outcome: 'done',
        }),
      );
      await http(h.baseUrl, 'POST', `/coupons/${couponId}/resume`, { admin: true });
    });

    it('when authentication fails, then the refusal and its audit line carry the id', async () => {
      const id = 'bad-token-7';
      const res = await http(h.baseUrl, 'POST', '/coupons', {
        headers: { 'x-request-id': id, authorization: 'Bearer wrong-token-0000000000' },
        body: { name: 'x', totalQuantity: 1 },
      });

      expect(res.status).to.equal(401);
      expect(res.headers.get('x-request-id')).to.equal(id);
      expect(linesOf(id).find((l) => l.message === 'audit')?.meta).to.include({
        event: 'authentication',
        outcome: 'failed',
      });
    });

    it('when an operator action logs from the domain, then its line carries the id too', async () => {
      const id = 'create-13';
      const res = await http<{ id: number }>(h.baseUrl, 'POST', '/coupons', {
        admin: true,
        headers: { 'x-request-id': id },
        body: { name: 'Gate not loaded', totalQuantity: UNLOADABLE_QUANTITY },
      });

      expect(res.status).to.equal(201);
      const warning = linesOf(id).find(
        (l) => l.message === 'coupon created but its Redis gate was not loaded yet',
      );
      expect(warning?.meta.couponId).to.equal(res.body.id);
      const { rows } = await h.container.pool.query('SELECT id FROM coupons WHERE id = $1', [
        res.body.id,
      ]);
      expect(rows).to.have.length(1);
    });

    it('when a handler fails with a bug, then the 500 and the error line carry the id', async () => {
      const id = 'bug-1';
      const res = await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
        body: { userId: 'user-bug' },
        headers: { 'x-request-id': id },
      });

      expect(res.status).to.equal(500);
      expect(res.headers.get('x-request-id')).to.equal(id);
      const error = linesOf(id).find((l) => l.message === 'unhandled error');
      expect(error?.level).to.equal('error');
      expect(String(error?.meta.error)).to.include('a bug in the gate');
    });

    it('when a dependency is down, then the 503 and its warning carry the id', async () => {
      const id = 'outage-1';
      const res = await http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
        body: { userId: 'user-outage' },
        headers: { 'x-request-id': id },
      });

      expect(res.status).to.equal(503);
      expect(res.headers.get('x-request-id')).to.equal(id);
      expect(linesOf(id).find((l) => l.message === 'dependency unavailable')?.level).to.equal(
        'warn',
      );
    });

    for (const [what, value] of [
      ['is too long', 'a'.repeat(129)],
      ['has a space', 'a b'],
      ['has a quote', 'a"b'],
      ['has a backslash', 'a\\nb'],
    ] as const) {
      it(`when the incoming id ${what}, then the answer carries a new UUID instead`, async () => {
        const res = await http(h.baseUrl, 'GET', '/healthz', {
          headers: { 'x-request-id': value },
        });

        expect(res.status).to.equal(200);
        expect(res.headers.get('x-request-id')).to.match(UUID);
      });
    }

    it('when the longest sane id comes, then it is kept', async () => {
      const id = 'Z'.repeat(128);
      const res = await http(h.baseUrl, 'GET', '/healthz', { headers: { 'x-request-id': id } });
      expect(res.headers.get('x-request-id')).to.equal(id);
    });

    it('when the request carries two X-Request-Id headers, then neither is taken', async () => {
      const conn = await RawConnection.open(h.baseUrl);
      try {
        conn.write(
          'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: one\r\nX-Request-Id: two\r\n' +
            'Connection: close\r\n\r\n',
        );
        const answer = parseResponse(await conn.untilClosed());

        expect(answer.status).to.equal(200);
        expect(answer.headers['x-request-id']).to.match(UUID);
      } finally {
        conn.destroy();
      }
    });

    it('when no id comes, then every kind of answer carries a fresh one', async () => {
      const answers = await Promise.all([
        requestIssue(h.baseUrl, couponId, 'user-2'),
        http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, { body: { userId: '' } }),
        http(h.baseUrl, 'GET', '/no/such/route'),
        http(h.baseUrl, 'DELETE', '/coupons'),
        http(h.baseUrl, 'GET', '/coupons/999999'),
        http(h.baseUrl, 'POST', `/coupons/${couponId}/issue-requests`, {
          body: { userId: 'x'.repeat(20_000) },
        }),
      ]);

      expect(answers.map((a) => a.status)).to.deep.equal([202, 400, 404, 405, 404, 413]);
      const ids = answers.map((a) => a.headers.get('x-request-id'));
      for (const id of ids) expect(id).to.match(UUID);
      expect(new Set(ids).size).to.equal(ids.length);
    });

    it('when the API description is read, then it names the header on answers and problems alike', async () => {
      const res = await http<{
        paths: Record<string, Record<string, { responses: Record<string, { headers?: object }> }>>;
      }>(h.baseUrl, 'GET', '/openapi.json');

      const accept = res.body.paths['/coupons/{couponId}/issue-requests']?.post?.responses;
      for (const status of ['202', '404', '429', '500']) {
        expect(accept?.[status]?.headers, status).to.have.property('X-Request-Id');
      }
    });

    it('when Node refuses a request before Express sees it, then its raw problem carries an id', async () => {
      const conn = await RawConnection.open(h.baseUrl);
      try {
        conn.write('HELLO THERE\r\n\r\n');
        const answer = parseResponse(await conn.untilClosed());

        expect(answer.status).to.equal(400);
        expect(answer.headers['x-request-id']).to.match(UUID);
      } finally {
        conn.destroy();
      }
    });

    it('when a body announced with Expect: 100-continue is too large, then the 413 echoes the id', async () => {
      const conn = await RawConnection.open(h.baseUrl);
      try {
        conn.write(
          `POST /coupons/${couponId}/issue-requests HTTP/1.1\r\nHost: x\r\n` +
            'Content-Type: application/json\r\nContent-Length: 999999\r\n' +
            'Expect: 100-continue\r\nX-Request-Id: big-1\r\n\r\n',
        );
        const answer = parseResponse(await conn.untilClosed());

        expect(answer.status).to.equal(413);
        expect(answer.headers['x-request-id']).to.equal('big-1');
      } finally {
        conn.destroy();
      }
    });
  });

  describe('ACCESS_LOG', () => {
    it('when it is all, then every answered request has one line with its route, status, duration, id and address', async () => {
      const res = await http(h.baseUrl, 'GET', `/coupons/${couponId}`, {
        headers: { 'x-request-id': 'access-all-1' },
      });
      const missing = await http(h.baseUrl, 'GET', '/nowhere', {
        headers: { 'x-request-id': 'access-all-2' },
      });

      expect([res.status, missing.status]).to.deep.equal([200, 404]);
      await logged(() => {
        const [line] = linesOf('access-all-1').filter((l) => l.message === 'access');
        expect(line?.level).to.equal('info');
        expect(line?.meta).to.include({
          method: 'GET',
          route: '/coupons/:couponId',
          status: 200,
          ip: '127.0.0.1',
        });
        expect(line?.meta.durationMs).to.be.a('number').and.at.least(0);
        expect(linesOf('access-all-2').find((l) => l.message === 'access')?.meta).to.include({
          route: null,
          status: 404,
        });
      });
      expect(linesOf('access-all-1').filter((l) => l.message === 'access')).to.have.length(1);
    });

    for (const [what, settings, expected] of [
      ['off', { mode: 'off', sampleRate: 1 }, 0],
      ['sampled at rate 0', { mode: 'sampled', sampleRate: 0 }, 0],
      ['sampled at rate 1', { mode: 'sampled', sampleRate: 1 }, 5],
      // Draws 0, 0.25, 0.5, 0.75, 0 against 0.5: the first, second and fifth are written.
      ['sampled at rate 0.5', { mode: 'sampled', sampleRate: 0.5, random: cycle() }, 3],
    ] as const) {
      it(`when it is ${what}, then ${expected} of 5 requests get an access line`, async () => {
        const app = await appWith(h, settings);
        try {
          for (let i = 0; i < 5; i += 1) {
            const res = await http(app.baseUrl, 'GET', '/healthz', {
              headers: { 'x-request-id': `sample-${i}` },
            });
            expect(res.headers.get('x-request-id')).to.equal(`sample-${i}`);
          }
          // The server runs in this process: an answer's `finish` (its line) comes before the
          // client here reads the answer, so once the last answer is read every line is written.
          const written = app.lines.filter((l) => l.message === 'access');
          expect(written).to.have.length(expected);
          if (settings.mode === 'sampled' && 'random' in settings) {
            expect(written.map((l) => l.meta.httpRequestId)).to.deep.equal([
              'sample-0',
              'sample-1',
              'sample-4',
            ]);
          }
        } finally {
          await app.close();
        }
      });
    }
  });
});

function cycle(): () => number {
  const draws = [0, 0.25, 0.5, 0.75];
  let i = 0;
  return () => draws[i++ % draws.length] as number;
}
