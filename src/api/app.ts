import express, { type Express } from 'express';
import type { Logger } from '../domain/ports.js';
import type { CheckConsistency } from '../domain/use-cases/check-consistency.js';
import type { CloseCoupon } from '../domain/use-cases/close-coupon.js';
import type { CouponStatsQuery } from '../domain/use-cases/coupon-stats.js';
import type { CreateCoupon } from '../domain/use-cases/create-coupon.js';
import type { GetCoupon } from '../domain/use-cases/get-coupon.js';
import type { GetIssueRequest } from '../domain/use-cases/get-issue-request.js';
import type { ListCoupons } from '../domain/use-cases/list-coupons.js';
import type { OpenCoupon } from '../domain/use-cases/open-coupon.js';
import type { PauseCoupon } from '../domain/use-cases/pause-coupon.js';
import type { ResumeCoupon } from '../domain/use-cases/resume-coupon.js';
import type { SubmitIssueRequest } from '../domain/use-cases/submit-issue-request.js';
import type { SyncCoupon } from '../domain/use-cases/sync-coupon.js';
import type { UpdateCoupon } from '../domain/use-cases/update-coupon.js';
import { BODY_LIMIT_BYTES, jsonBody as readJsonBody } from './json-body.js';
import { errorHandler } from './problem.js';
import { couponRoutes } from './routes/coupons.routes.js';
import { issueRequestRoutes } from './routes/issue-requests.routes.js';
import { noRoute, ROUTES, serve } from './routes/route-table.js';

export interface HealthReport {
  readonly redis: boolean;
  readonly postgres: boolean;
  /** Present when this process runs the batch worker. */
  readonly worker?: { state: string; failures: number; lastError?: string };
}

export interface ApiDeps {
  readonly createCoupon: CreateCoupon;
  readonly getCoupon: GetCoupon;
  readonly closeCoupon: CloseCoupon;
  readonly syncCoupon: SyncCoupon;
  readonly checkConsistency: CheckConsistency;
  readonly listCoupons: ListCoupons;
  readonly updateCoupon: UpdateCoupon;
  readonly openCoupon: OpenCoupon;
  readonly pauseCoupon: PauseCoupon;
  readonly resumeCoupon: ResumeCoupon;
  readonly couponStats: CouponStatsQuery;
  readonly submitIssueRequest: SubmitIssueRequest;
  readonly getIssueRequest: GetIssueRequest;
  readonly health: () => Promise<HealthReport>;
  readonly adminToken: string;
  readonly logger: Logger;
}

/** Builds the app without listening, so tests can serve it on port 0. */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  // Every answer here is fresh and small: ETags would cost a hash per response for nothing.
  app.set('etag', false);
  app.disable('x-powered-by');
  app.set('query parser', false);
  // One spelling per route: /coupons/1/SYNC is not /coupons/1/sync.
  app.set('case sensitive routing', true);

  const jsonBody = readJsonBody(BODY_LIMIT_BYTES);

  // The accept and status endpoints take nearly all the traffic: they are matched first.
  issueRequestRoutes(app, { ...deps, jsonBody });
  app.use(couponRoutes({ ...deps, jsonBody }));
  serve(app, ROUTES.health, async (_req, res) => {
    const report = await deps.health();
    const ok = report.redis && report.postgres && report.worker?.state !== 'backing-off';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', ...report });
  });

  app.use(noRoute);
  app.use(errorHandler(deps.logger));
  return app;
}
