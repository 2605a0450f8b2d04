import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { AcceptOutcome } from '../domain/ports.js';
import { problemCodeOf, sendProblem, type ProblemCode } from './problem.js';
import { matches, ROUTES, type Route } from './routes/route-table.js';

/** What the API reports; src/infra/metrics implements it over prom-client. */
export interface HttpMetrics {
  /** One answered request: `route` is a route-table pattern, or UNMATCHED_ROUTE. */
  request(route: string, method: string, status: number, seconds: number): void;
  accepted(outcome: AcceptOutcome): void;
}

/** The route label of every request whose path is in no row of the route table. */
export const UNMATCHED_ROUTE = 'unmatched';

const ACCEPT = ROUTES.submitIssueRequest;

/** Refusals of an issue request, by the problem code it was answered with. */
const REFUSALS: Partial<Record<ProblemCode, AcceptOutcome>> = {
  SOLD_OUT: 'sold_out',
  ALREADY_ISSUED: 'already_issued',
  EVENT_NOT_OPEN: 'not_open',
  EVENT_FINISHED: 'not_open',
  EVENT_PAUSED: 'paused',
  COUPON_NOT_FOUND: 'not_found',
  RATE_LIMITED: 'rate_limited',
  VALIDATION_FAILED: 'invalid',
  INVALID_JSON: 'invalid',
  UNSUPPORTED_MEDIA_TYPE: 'invalid',
  PAYLOAD_TOO_LARGE: 'invalid',
  BAD_REQUEST: 'invalid',
  USER_MISMATCH: 'invalid',
  UNAUTHORIZED: 'unauthorized',
  INVALID_TOKEN: 'unauthorized',
  FORBIDDEN: 'unauthorized',
  DEPENDENCY_UNAVAILABLE: 'unavailable',
};

/** The accept-time outcome of a refused issue request. */
export function refusalOutcome(code: ProblemCode | undefined): AcceptOutcome {
  return (code && REFUSALS[code]) ?? 'error';
}

const ROWS = Object.values(ROUTES) as Route[];

/** The route-table pattern of a request no route handler took (refused early, 404, 405). */
function patternOf(method: string, path: string): string {
  const want = method === 'HEAD' ? 'GET' : method;
  let samePath: string | undefined;
  for (const row of ROWS) {
    if (!matches(row.path, path)) continue;
    if (row.method === want) return row.path;
    samePath ??= row.path;
  }
  return samePath ?? UNMATCHED_ROUTE;
}

function routeOf(req: Request): string {
  // Set by Express on the route that handled the request (and kept through its error handler).
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? path : patternOf(req.method, req.path);
}

// Where a request's start is kept until its answer is finished.
const STARTED = 'metricsStartedAt';

/**
 * Times every request from here to its answer (one `finish` listener) under
 * its route-table pattern, never the raw path, so the label set stays bounded;
 * and counts the refused issue requests by outcome (the accept handler counts
 * the ones it queued: only it knows a repeat from a new one). A plain call, for
 * the app's first middleware: one listener function shared by every request (no
 * closure per request), the start kept on `res.locals`.
 */
export function requestObserver(metrics: HttpMetrics): (req: Request, res: Response) => void {
  function onFinish(this: Response): void {
    const req = this.req;
    const route = routeOf(req);
    const status = this.statusCode;
    const started = this.locals[STARTED] as number;
    metrics.request(route, req.method, status, (performance.now() - started) / 1000);
    if (status >= 300 && route === ACCEPT.path && req.method === ACCEPT.method) {
      metrics.accepted(refusalOutcome(problemCodeOf(this)));
    }
  }
  return (_req, res) => {
    res.locals[STARTED] = performance.now();
    res.on('finish', onFinish);
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * GET /metrics. With a token, only `Authorization: Bearer <token>` gets in
 * (compared in constant time); without one it is open.
 */
export function metricsEndpoint(options: {
  token: string | null;
  contentType: string;
  render: () => Promise<string>;
}): RequestHandler {
  const expected = options.token === null ? null : digest(options.token);
  return async (req, res: Response) => {
    if (expected) {
      const header = req.get('authorization') ?? '';
      const match = /^Bearer +(\S+)$/i.exec(header);
      if (!match) {
        sendProblem(res, 'UNAUTHORIZED', 'a bearer token (METRICS_TOKEN) is required');
        return;
      }
      if (!timingSafeEqual(digest(match[1] as string), expected)) {
        sendProblem(res, 'INVALID_TOKEN', 'the bearer token is not the metrics token');
        return;
      }
    }
    const text = await options.render();
    res.status(200).type(options.contentType).send(text);
  };
}

/** GET /metrics when METRICS_ENABLED=false. */
export const metricsOff: RequestHandler = (_req, res) => {
  sendProblem(res, 'NOT_FOUND', 'metrics are off (METRICS_ENABLED=false)');
};
