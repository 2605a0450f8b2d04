import { expect } from 'chai';
import type { ZodType } from 'zod';
import { openApiPath } from '../../src/api/openapi.js';
import { ROUTES } from '../../src/api/routes/route-table.js';
import {
  acceptedIssueRequest,
  couponView,
  createdCoupon,
  issueRequestView,
  problem,
} from '../../src/api/schemas.js';
import { drainAll, startHarness, type Harness } from '../support/harness.js';
import { http, requestIssue, type HttpResult } from '../support/http.js';

interface Operation {
  security?: Record<string, string[]>[];
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

describe('API description (OpenAPI 3.1 at /openapi.json, Swagger UI at /docs)', () => {
  let h: Harness;
  let doc: Document;

  before(async () => {
    h = await startHarness();
    const res = await http<Document>(h.baseUrl, 'GET', '/openapi.json');
    expect(res.status).to.equal(200);
    expect(res.contentType).to.match(/^application\/json/);
    doc = res.body;
  });
  after(async () => {
    await h.cleanup();
  });

  /**
   * Checks an answer against the document: the document names `component` for this
   * route and status, and the zod schema it was generated from accepts the body.
   */
  function expectConforms(
    res: HttpResult<unknown>,
    method: string,
    path: string,
    component: string,
    schema: ZodType,
  ): void {
    const operation = doc.paths[path]?.[method];
    expect(operation, `${method} ${path} in the document`).to.not.equal(undefined);
    const media = res.contentType.split(';')[0] as string;
    const described = operation?.responses[String(res.status)]?.content?.[media]?.schema;
    expect(described, `${method} ${path} ${res.status} ${media}`).to.deep.equal({
      $ref: `#/components/schemas/${component}`,
    });
    const parsed = schema.safeParse(res.body);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).to.equal(true);
  }

  it('when the document is read, then it is OpenAPI 3.1 with every route of the route table and no other', () => {
    const described = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const routes = Object.values(ROUTES).map((r) => `${r.method} ${openApiPath(r.path)}`);

    expect(doc.openapi).to.equal('3.1.0');
    expect(described.sort()).to.deep.equal(routes.sort());
  });

  it('when the document is read, then operator routes require the admin scheme and user routes a JWT', () => {
    expect(Object.keys(doc.components.securitySchemes).sort()).to.deep.equal([
      'adminToken',
      'userJwt',
    ]);
    expect(doc.paths['/coupons']?.post?.security).to.deep.equal([{ adminToken: [] }]);
    expect(doc.paths['/coupons/{couponId}/close']?.post?.security).to.deep.equal([
      { adminToken: [] },
    ]);
    expect(doc.paths['/coupons/{couponId}/issue-requests']?.post?.security).to.deep.equal([
      { userJwt: [] },
    ]);
    expect(doc.paths['/coupons/{couponId}']?.get?.security).to.equal(undefined);
  });

  it('when the main answers of the contract are checked against the document, then each conforms (create, accept, status pending and decided, coupon)', async () => {
    const created = await http(h.baseUrl, 'POST', '/coupons', {
      body: { name: 'Described', totalQuantity: 1, startsAt: null },
      admin: true,
    });
    const couponId = (created.body as { id: number }).id;
    const accepted = await requestIssue(h.baseUrl, couponId, 'described-user');
    const pending = await http(h.baseUrl, 'GET', `/issue-requests/${accepted.body.requestId}`);
    await drainAll(h.container);
    const decided = await http(h.baseUrl, 'GET', `/issue-requests/${accepted.body.requestId}`);
    const coupon = await http(h.baseUrl, 'GET', `/coupons/${couponId}`);

    expectConforms(created, 'post', '/coupons', 'CreatedCoupon', createdCoupon);
    expectConforms(
      accepted,
      'post',
      '/coupons/{couponId}/issue-requests',
      'AcceptedIssueRequest',
      acceptedIssueRequest,
    );
    expectConforms(pending, 'get', '/issue-requests/{requestId}', 'IssueRequest', issueRequestView);
    expectConforms(decided, 'get', '/issue-requests/{requestId}', 'IssueRequest', issueRequestView);
    expect((decided.body as { status: string }).status).to.equal('ISSUED');
    expectConforms(coupon, 'get', '/coupons/{couponId}', 'Coupon', couponView);
  });

  it('when requests are refused, then each problem+json answer conforms to the document (400, 401, 404, 409, 415)', async () => {
    const created = await http<{ id: number }>(h.baseUrl, 'POST', '/coupons', {
      body: { name: 'Refusals', totalQuantity: 1 },
      admin: true,
    });
    const couponId = created.body.id;
    const issue = `/coupons/${couponId}/issue-requests`;
    await requestIssue(h.baseUrl, couponId, 'first');
    await drainAll(h.container);

    const cases: [HttpResult<unknown>, string, string][] = [
      [
        await http(h.baseUrl, 'POST', issue, { body: { userId: '' } }),
        'post',
        '/coupons/{couponId}/issue-requests',
      ],
      [await http(h.baseUrl, 'POST', '/coupons', { body: {} }), 'post', '/coupons'],
      [await http(h.baseUrl, 'GET', '/coupons/424242'), 'get', '/coupons/{couponId}'],
      [
        await requestIssue(h.baseUrl, couponId, 'first'),
        'post',
        '/coupons/{couponId}/issue-requests',
      ],
      [
        await http(h.baseUrl, 'POST', issue, {
          raw: 'userId=x',
          headers: { 'content-type': 'text/plain' },
        }),
        'post',
        '/coupons/{couponId}/issue-requests',
      ],
    ];

    expect(cases.map(([res]) => res.status)).to.deep.equal([400, 401, 404, 409, 415]);
    for (const [res, method, path] of cases) expectConforms(res, method, path, 'Problem', problem);
  });

  it('when /docs is opened, then the page loads Swagger UI from this service only, under its own CSP, and the assets are served', async () => {
    const page = await http<string>(h.baseUrl, 'GET', '/docs');
    const bundle = await fetch(`${h.baseUrl}/docs/assets/swagger-ui-bundle.js`);
    const css = await fetch(`${h.baseUrl}/docs/assets/swagger-ui.css`);
    const init = await http<string>(h.baseUrl, 'GET', '/docs/assets/init.js');
    const missing = await http(h.baseUrl, 'GET', '/docs/assets/index.html');

    expect(page.status).to.equal(200);
    expect(page.contentType).to.match(/^text\/html/);
    expect(page.body).to.include('/docs/assets/swagger-ui-bundle.js');
    expect(page.body).to.not.match(/https?:\/\//);
    expect(page.headers.get('content-security-policy')).to.include("script-src 'self'");
    expect(bundle.status).to.equal(200);
    expect(bundle.headers.get('content-type')).to.match(/javascript/);
    expect((await bundle.text()).length).to.be.greaterThan(100_000);
    expect(css.status).to.equal(200);
    expect(css.headers.get('content-type')).to.match(/^text\/css/);
    expect(init.body).to.include("url: '/openapi.json'");
    expect([missing.status, (missing.body as { code?: string }).code]).to.deep.equal([
      404,
      'FILE_NOT_FOUND',
    ]);
  });
});
