import { expect } from 'chai';
import { startHarness, type Harness } from '../support/harness.js';
import { createCoupon } from '../support/http.js';
import { couponState } from '../support/state.js';

/*
 * The accept endpoint reads plain JSON requests itself and hands every other
 * request to body-parser. Whichever path a body takes, the answer must be the
 * same: here each body is sent once as `application/json` (read directly) and
 * once as `application/json;charset=utf-8` (no space: the general path).
 */

const utf8 = (s: string) => Buffer.from(s, 'utf8');

const BODIES: readonly [string, Buffer][] = [
  ['a valid body', utf8('{"userId":"same-1"}')],
  [
    'a valid body with a byte order mark',
    Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8('{"userId":"same-2"}')]),
  ],
  ['a valid body inside whitespace', utf8(' \t\r\n{"userId":"same-3"}\n ')],
  ['an empty body', Buffer.alloc(0)],
  ['only whitespace', utf8('  \n ')],
  ['a JSON string', utf8('"same-4"')],
  ['a JSON number', utf8('42')],
  ['null', utf8('null')],
  ['true', utf8('true')],
  ['an array', utf8('[{"userId":"same-5"}]')],
  ['truncated JSON', utf8('{"userId":"same-6"')],
  ['trailing garbage', utf8('{"userId":"same-7"} x')],
  ['two documents', utf8('{"userId":"a"}{"userId":"b"}')],
  ['a duplicate key', utf8('{"userId":"same-8","userId":"same-9"}')],
  ['an unknown field', utf8('{"userId":"same-10","extra":1}')],
  ['a lone surrogate escape', utf8('{"userId":"\\ud800"}')],
  ['invalid UTF-8', Buffer.concat([utf8('{"userId":"'), Buffer.from([0xc3, 0x28]), utf8('"}')])],
  ['Latin-1 bytes', Buffer.concat([utf8('{"userId":"caf'), Buffer.from([0xe9]), utf8('"}')])],
  [
    'an overlong encoding',
    Buffer.concat([utf8('{"userId":"'), Buffer.from([0xc0, 0xaf]), utf8('"}')]),
  ],
  ['a NUL byte', utf8('{"userId":"a\u0000b"}')],
  ['a body at the 16 kB limit', utf8(`{"userId":"same-11","pad":"${'x'.repeat(16 * 1024 - 29)}"}`)],
  [
    'a body one byte over the limit',
    utf8(`{"userId":"same-12","pad":"${'x'.repeat(16 * 1024 - 28)}"}`),
  ],
];

describe('reading JSON bodies: the direct path answers as body-parser does', () => {
  let h: Harness;
  let couponId: number;

  before(async () => {
    h = await startHarness();
    couponId = await createCoupon(h.baseUrl, { name: 'Bodies', totalQuantity: 1_000 });
  });
  after(async () => {
    await h.cleanup();
  });

  async function post(contentType: string, body: Buffer) {
    const res = await fetch(`${h.baseUrl}/coupons/${couponId}/issue-requests`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
    });
    const parsed = (await res.json()) as { code?: string; requestId?: string };
    return { status: res.status, code: parsed.code ?? null, requestId: parsed.requestId ?? null };
  }

  it('when the bodies at and over the limit are built, then they are 16,384 and 16,385 bytes', () => {
    const sizes = BODIES.filter(([what]) => what.includes('limit')).map(([, body]) => body.length);
    expect(sizes).to.deep.equal([16_384, 16_385]);
  });

  for (const [what, body] of BODIES) {
    it(`when the body is ${what}, then both paths give the same answer`, async () => {
      const direct = await post('application/json', body);
      const general = await post('application/json;charset=utf-8', body);

      expect(direct.status, 'never a server error').to.be.below(500);
      expect({ status: direct.status, code: direct.code }).to.deep.equal({
        status: general.status,
        code: general.code,
      });
      // Accepted twice means the same request twice: the second answer names the first.
      if (direct.status === 202) expect(general.requestId).to.equal(direct.requestId);
    });
  }

  it('when every body above has been sent both ways, then only the valid ones queued a request, one each', async () => {
    const state = await couponState(h.container, couponId);
    // same-1, same-2 (after its byte order mark), same-3, and same-9 (the later duplicate key).
    expect(state.queued).to.equal(4);
  });
});
