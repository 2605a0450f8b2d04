import type { IRouter, RequestHandler } from 'express';
import { sendProblem } from '../problem.js';

export interface Route {
  readonly method: 'GET' | 'POST' | 'PATCH';
  /** Segments separated by `/`; `:name` stands for any one non-empty segment. */
  readonly path: string;
}

/**
 * Every route the API serves, in one place: the route modules register their
 * handlers under these rows, and the same rows decide whether a request that
 * matched no handler gets 404 (no such path) or 405 with `Allow` (the path
 * exists, the method does not). A new endpoint is one row here, its entry
 * in route-docs.ts (the API description; typecheck fails without it) and its
 * handler.
 */
export const ROUTES = {
  submitIssueRequest: { method: 'POST', path: '/coupons/:couponId/issue-requests' },
  getIssueRequest: { method: 'GET', path: '/issue-requests/:requestId' },
  createCoupon: { method: 'POST', path: '/coupons' },
  getCoupon: { method: 'GET', path: '/coupons/:couponId' },
  closeCoupon: { method: 'POST', path: '/coupons/:couponId/close' },
  syncCoupon: { method: 'POST', path: '/coupons/:couponId/sync' },
  checkConsistency: { method: 'GET', path: '/coupons/:couponId/consistency' },
  health: { method: 'GET', path: '/health' },
  healthz: { method: 'GET', path: '/healthz' },
  readyz: { method: 'GET', path: '/readyz' },
  listCoupons: { method: 'GET', path: '/coupons' },
  updateCoupon: { method: 'PATCH', path: '/coupons/:couponId' },
  openCoupon: { method: 'POST', path: '/coupons/:couponId/open' },
  pauseCoupon: { method: 'POST', path: '/coupons/:couponId/pause' },
  resumeCoupon: { method: 'POST', path: '/coupons/:couponId/resume' },
  couponStats: { method: 'GET', path: '/coupons/:couponId/stats' },
  openapi: { method: 'GET', path: '/openapi.json' },
  docs: { method: 'GET', path: '/docs' },
  docsAsset: { method: 'GET', path: '/docs/assets/:file' },
  dashboard: { method: 'GET', path: '/dashboard' },
  dashboardAsset: { method: 'GET', path: '/dashboard/assets/:file' },
  metrics: { method: 'GET', path: '/metrics' },
} as const satisfies Record<string, Route>;

export type RouteName = keyof typeof ROUTES;

/** Registers handlers under a row of the table. */
export function serve(router: IRouter, route: Route, ...handlers: RequestHandler[]): void {
  if (route.method === 'GET') router.get(route.path, ...handlers);
  else if (route.method === 'PATCH') router.patch(route.path, ...handlers);
  else router.post(route.path, ...handlers);
}

/** Matches as Express does here: case-sensitive, one optional trailing slash. */
export function matches(pattern: string, path: string): boolean {
  return matcher(pattern)(path);
}

/** `matches` for one pattern, split once (for checks made on every request). */
export function matcher(pattern: string): (path: string) => boolean {
  const want = pattern.split('/');
  return (path) => {
    const got = (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path).split('/');
    return (
      want.length === got.length &&
      want.every((segment, i) => (segment.startsWith(':') ? got[i] !== '' : segment === got[i]))
    );
  };
}

/** The methods served on a path (HEAD wherever GET is: Express answers it), or none. */
export function allowedMethods(path: string): string[] {
  const methods = new Set<string>();
  for (const route of Object.values(ROUTES) as Route[]) {
    if (!matches(route.path, path)) continue;
    methods.add(route.method);
    if (route.method === 'GET') methods.add('HEAD');
  }
  return [...methods].sort();
}

/** The last handler: nothing matched, so either the path or the method is unknown. */
export const noRoute: RequestHandler = (req, res) => {
  const allowed = allowedMethods(req.path);
  if (allowed.length === 0) {
    sendProblem(res, 'NOT_FOUND', `no route for ${req.method} ${req.path}`);
    return;
  }
  res.setHeader('Allow', allowed.join(', '));
  sendProblem(res, 'METHOD_NOT_ALLOWED', `${req.method} is not supported on ${req.path}`);
};
