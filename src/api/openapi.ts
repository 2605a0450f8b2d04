import {
  OpenAPIRegistry,
  OpenApiGeneratorV31,
  type ResponseConfig,
} from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ROUTE_DOCS, type RouteDoc } from './routes/route-docs.js';
import { ROUTES, type RouteName } from './routes/route-table.js';
import { problem } from './schemas.js';

const PROBLEM_DESCRIPTION: Record<number, string> = {
  400: 'The request is not valid (VALIDATION_FAILED, INVALID_JSON, BAD_REQUEST)',
  401: 'Missing or invalid credentials (UNAUTHORIZED; WWW-Authenticate: Bearer)',
  403: 'Authenticated, but not allowed',
  404: 'No such resource',
  409: 'Conflicts with the current state (ALREADY_ISSUED, SOLD_OUT, EVENT_NOT_OPEN, …)',
  410: 'The request was lost before it was decided (REQUEST_LOST)',
  413: 'The body is too large (PAYLOAD_TOO_LARGE)',
  415: 'The body is not application/json (UNSUPPORTED_MEDIA_TYPE)',
  429: 'Over a rate limit (RATE_LIMITED): Retry-After and RateLimit-* say when to come back',
  500: 'A bug (INTERNAL_ERROR); nothing about it is answered',
  503: 'Redis or PostgreSQL did not answer in time (DEPENDENCY_UNAVAILABLE; Retry-After)',
};

const RATE_LIMIT_HEADERS = {
  'RateLimit-Limit': { description: 'Requests allowed in the window', schema: { type: 'integer' } },
  'RateLimit-Remaining': { description: 'Requests left in it', schema: { type: 'integer' } },
  'RateLimit-Reset': { description: 'Seconds until it ends', schema: { type: 'integer' } },
  'RateLimit-Policy': { description: '`<limit>;w=<seconds>`', schema: { type: 'string' } },
} as const;

/** On every answer (see request-id.ts). */
const REQUEST_ID_HEADER = {
  'X-Request-Id': {
    description:
      'The request’s id: the X-Request-Id sent when it is 1–128 of A–Z a–z 0–9 . _ : -, else a new UUID; logs name the request by it',
    schema: { type: 'string' },
  },
} as const;

/** `/coupons/:couponId` as OpenAPI writes it: `/coupons/{couponId}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z]+)/g, '{$1}');
}

function responses(doc: RouteDoc): Record<number, ResponseConfig> {
  const out: Record<number, ResponseConfig> = {};
  for (const [status, answer] of Object.entries(doc.responses)) {
    out[Number(status)] = {
      description: answer.description,
      headers: REQUEST_ID_HEADER,
      ...(answer.schema
        ? { content: { 'application/json': { schema: answer.schema } } }
        : { content: { [answer.type ?? 'text/plain']: { schema: z.string() } } }),
    };
  }
  for (const status of [...doc.problems, 429, 500, 503]) {
    out[status] = {
      description: PROBLEM_DESCRIPTION[status] ?? 'Problem',
      content: { 'application/problem+json': { schema: problem } },
      headers:
        status === 429
          ? {
              ...REQUEST_ID_HEADER,
              'Retry-After': { schema: { type: 'integer' } },
              ...RATE_LIMIT_HEADERS,
            }
          : REQUEST_ID_HEADER,
    };
  }
  return out;
}

/** The OpenAPI 3.1 document of every row of the route table. */
export function openApiDocument(): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'userJwt', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'A user’s token; its `sub` is the user',
  });
  registry.registerComponent('securitySchemes', 'adminToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'ADMIN_TOKEN, or a JWT with the operator role',
  });

  for (const name of Object.keys(ROUTES) as RouteName[]) {
    const route = ROUTES[name];
    const doc: RouteDoc = ROUTE_DOCS[name];
    registry.registerPath({
      method: route.method.toLowerCase() as 'get' | 'post' | 'patch',
      path: openApiPath(route.path),
      operationId: name,
      summary: doc.summary,
      tags: [doc.tag],
      ...(doc.auth === 'user' ? { security: [{ userJwt: [] }] } : {}),
      ...(doc.auth === 'operator' ? { security: [{ adminToken: [] }] } : {}),
      request: {
        ...(doc.params ? { params: z.object(doc.params) } : {}),
        ...(doc.query ? { query: doc.query as z.ZodObject } : {}),
        ...(doc.body
          ? { body: { required: true, content: { 'application/json': { schema: doc.body } } } }
          : {}),
      },
      responses: responses(doc),
    });
  }

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Coupon issuance',
      version: '1',
      description:
        'First come, first served: an issue request is accepted at once (202 and a request id) and decided in arrival order; poll its status.',
    },
  });
}
