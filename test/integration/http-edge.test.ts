import { expect } from 'chai';
import { connect } from 'node:net';
import { startHarness, type Harness } from '../support/harness.js';
import { http } from '../support/http.js';
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
