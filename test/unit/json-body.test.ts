import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import type { Request, RequestHandler, Response } from 'express';
import sinon from 'sinon';
import { jsonBody, parseJsonBody } from '../../src/api/json-body.js';

function fakeRequest(headers: Record<string, string>): Request & EventEmitter {
  return Object.assign(new EventEmitter(), { headers }) as unknown as Request & EventEmitter;
}

/** Runs the middleware over a request whose body arrives in `chunks`; resolves with next's argument. */
function run(
  handler: RequestHandler,
  req: Request & EventEmitter,
  chunks: readonly string[],
): Promise<unknown> {
  return new Promise((resolve) => {
    void handler(req, {} as Response, resolve);
    for (const c of chunks) req.emit('data', Buffer.from(c));
    req.emit('end');
  });
}

describe('the JSON body reader', () => {
  const general = () => sinon.spy<RequestHandler>((_req, _res, next) => next());

  it('when a plain application/json body within the limit arrives in pieces, then it is parsed here and the general path is skipped', async () => {
    const g = general();
    const body = '{"userId":"u-1"}';
    const req = fakeRequest({
      'content-type': 'application/json',
      'content-length': String(body.length),
    });

    const err = await run(jsonBody(16_384, [g]), req, ['{"userId"', ':"u-1"}']);

    expect(err).to.equal(undefined);
    expect(req.body).to.deep.equal({ userId: 'u-1' });
    expect(g.called).to.equal(false);
  });

  for (const [what, headers] of [
    [
      'another spelling of the media type',
      { 'content-type': 'application/json;charset=utf-8', 'content-length': '2' },
    ],
    ['text/plain', { 'content-type': 'text/plain', 'content-length': '2' }],
    [
      'no content-length (chunked)',
      { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    ],
    [
      'a content-length over the limit',
      { 'content-type': 'application/json', 'content-length': '16385' },
    ],
    [
      'a content-encoding',
      { 'content-type': 'application/json', 'content-length': '2', 'content-encoding': 'gzip' },
    ],
    ['a malformed content-length', { 'content-type': 'application/json', 'content-length': '2x' }],
  ] as const) {
    it(`when the request has ${what}, then the general path reads it`, async () => {
      const g1 = general();
      const g2 = general();
      const req = fakeRequest(headers);

      await new Promise((resolve) => void jsonBody(16_384, [g1, g2])(req, {} as Response, resolve));

      expect([g1.calledOnce, g2.calledOnce]).to.deep.equal([true, true]);
      expect(req.body).to.equal(undefined);
    });
  }

  it('when a general handler answers by itself, then the later ones and next are not called', async () => {
    const refuse = sinon.spy<RequestHandler>(() => undefined);
    const g2 = general();
    const next = sinon.spy();
    const req = fakeRequest({ 'content-type': 'text/plain' });

    void jsonBody(16_384, [refuse, g2])(req, {} as Response, next);

    expect([refuse.calledOnce, g2.called, next.called]).to.deep.equal([true, false, false]);
  });

  it('when fewer bytes arrive than Content-Length declared, then the request is refused as unreadable', async () => {
    const req = fakeRequest({ 'content-type': 'application/json', 'content-length': '20' });

    const err = (await run(jsonBody(16_384, []), req, ['{}'])) as { status?: number };

    expect(err).to.be.instanceOf(Error);
    expect(err.status).to.equal(400);
  });

  describe('parseJsonBody', () => {
    const invalid = { status: 400, type: 'entity.parse.failed' };
    for (const [what, bytes] of [
      ['invalid UTF-8', Buffer.from([0x7b, 0xc3, 0x28, 0x7d])],
      ['a top-level string', Buffer.from('"x"')],
      ['a top-level number after whitespace', Buffer.from(' \n 1')],
      ['whitespace only', Buffer.from(' \t ')],
      ['truncated JSON', Buffer.from('{"a":')],
    ] as const) {
      it(`when the body is ${what}, then it is refused as INVALID_JSON`, () => {
        expect(() => parseJsonBody(bytes))
          .to.throw()
          .that.includes(invalid);
      });
    }

    it('when the body is empty, then it reads as an empty object (as body-parser has it)', () => {
      expect(parseJsonBody(Buffer.alloc(0))).to.deep.equal({});
    });

    it('when the body starts with a byte order mark, then the mark is dropped', () => {
      expect(parseJsonBody(Buffer.from('\ufeff{"a":1}', 'utf8'))).to.deep.equal({ a: 1 });
    });
  });
});
