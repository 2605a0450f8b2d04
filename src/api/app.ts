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
import { accessLog, type AccessLogSettings } from './access-log.js';
import { BODY_LIMIT_BYTES, jsonBody as readJsonBody } from './json-body.js';
import { createIdentity } from './identity.js';
import { createLimits, type Limiters, type Limits } from './limits.js';
import { metricsEndpoint, metricsOff, requestObserver, type HttpMetrics } from './metrics.js';
import { errorHandler } from './problem.js';
import { nameRequest } from './request-id.js';
import { answerOptions, corsFor, securityHeaderSetter } from './security.js';
import { couponRoutes } from './routes/coupons.routes.js';
import { dashboardRoutes } from './routes/dashboard.routes.js';
import { docsRoutes } from './routes/docs.routes.js';
import { issueRequestRoutes } from './routes/issue-requests.routes.js';
import { matcher, noRoute, ROUTES, serve } from './routes/route-table.js';
import type { TokenVerifier } from './token-verifier.js';

export interface HealthReport {
  readonly redis: boolean;
  readonly postgres: boolean;
  /** Migrations in `migrations/` the database lacks; absent when PostgreSQL did not answer. */
  readonly pendingMigrations?: number;
  /**
   * The freshest batch-worker heartbeat in Redis (from any process), null when no worker beat
   * within the last hour; absent when Redis did not answer.
   */
  readonly workerHeartbeat?: { worker: string; ageMs: number; fresh: boolean } | null;
  /** True from the moment this process began to stop. */
  readonly shuttingDown: boolean;
  /** Present when this process runs the batch worker. */
  readonly worker?: { state: string; failures: number; lastError?: string };
}

/** What keeps the service from taking traffic: the checks /readyz names when it answers 503. */
export function notReady(report: HealthReport): string[] {
  const failing: string[] = [];
  if (report.shuttingDown) failing.push('shutting-down');
  if (!report.redis) failing.push('redis');
  if (!report.postgres) failing.push('postgres');
  if (report.postgres && report.pendingMigrations !== 0) failing.push('migrations');
  if (report.redis && !report.workerHeartbeat?.fresh) failing.push('worker');
  return failing;
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
  readonly shuttingDown: () => boolean;
  readonly adminToken: string;
  /** Verifies users' bearer tokens; null when no identity is configured. */
  readonly tokenVerifier: TokenVerifier | null;
  /** Called on every failed authentication. */
  readonly onAuthFailure?: (req: express.Request) => void;
  readonly logger: Logger;
  /** The rate limits in force; absent: none. */
  readonly limiters?: Limiters;
  /** Express `trust proxy`: which proxies' X-Forwarded-For decides the client address. */
  readonly trustProxy?: boolean | number | readonly string[];
  /** Browser origins allowed to call the API (CORS); none when empty or absent. */
  readonly corsOrigins?: readonly string[];
  /** Called when a limiter failed and the request was let through. */
  readonly onLimiterError?: (err: unknown) => void;
  /** Which answered requests get an access line; absent: none. */
  readonly accessLog?: AccessLogSettings;
  /** Prometheus metrics; absent: none kept, and GET /metrics answers 404. */
  readonly metrics?: ApiMetrics;
}

export interface ApiMetrics extends HttpMetrics {
  /** Bearer token GET /metrics requires; null: open. */
  readonly token: string | null;
  readonly contentType: string;
  /** The text a scrape gets. */
  render(): Promise<string>;
}

const isSubmitPath = matcher(ROUTES.submitIssueRequest.path);
const isStatusPath = matcher(ROUTES.getIssueRequest.path);

/** The requests whose per-address count is taken with their per-user count (see limits.ts). */
function hasUserLimit(req: express.Request): boolean {
  return req.method === 'POST'
    ? isSubmitPath(req.path)
    : (req.method === 'GET' || req.method === 'HEAD') && isStatusPath(req.path);
}

/** The limits middleware for `deps`, or none when no limit is in force. */
export function limitsFor(deps: Pick<ApiDeps, 'limiters' | 'onLimiterError'>): Limits | undefined {
  if (!deps.limiters) return undefined;
  return createLimits(deps.limiters, {
    deferIp: hasUserLimit,
    ...(deps.onLimiterError ? { onError: deps.onLimiterError } : {}),
  });
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
  app.set('trust proxy', deps.trustProxy ?? false);

  const jsonBody = readJsonBody(BODY_LIMIT_BYTES);
  const limits = limitsFor(deps);
  const identity = createIdentity({
    verifier: deps.tokenVerifier,
    adminToken: deps.adminToken,
    logger: deps.logger,
    // Every failed authentication counts against the client's address.
    ...(limits ? { onAuthFailure: limits.authFailure } : {}),
  });
  // Before every other middleware, in one layer (each router layer is a dispatch per
  // request): the metrics clock, so that every answer is timed and counted, refusals
  // included; the request's id, so that every answer names it; the security headers.
  const observe = deps.metrics ? requestObserver(deps.metrics) : undefined;
  const secure = securityHeaderSetter();
  app.use((req, res, next) => {
    observe?.(req, res);
    nameRequest(req, res);
    secure(res);
    next();
  });
  const access = deps.accessLog && accessLog(deps.accessLog, deps.logger);
  if (access) app.use(access);
  // Before the limits: a refused request still carries CORS headers the page can read.
  const allowOrigins = corsFor(deps.corsOrigins ?? []);
  if (allowOrigins) app.use(allowOrigins);
  app.use(answerOptions);
  // Before the limits: Prometheus scrapes from one address, and must not be refused.
  serve(app, ROUTES.metrics, deps.metrics ? metricsEndpoint(deps.metrics) : metricsOff);
  if (limits) app.use(limits.ipLimit);

  // The accept and status endpoints take nearly all the traffic: they are matched first.
  issueRequestRoutes(app, {
    ...deps,
    jsonBody,
    identity,
    ...(limits
      ? {
          userLimit: limits.userLimit,
          admission: limits.admission,
          chargeUnadmitted: limits.chargeUnadmitted,
        }
      : {}),
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
  });
  app.use(couponRoutes({ ...deps, jsonBody, operator: identity.operator }));
  // No probe answer is cached: securityHeaders() sets `Cache-Control: no-store` on every answer.
  // Liveness: the process answers. It touches no dependency, so an outage of Redis or
  // PostgreSQL never gets healthy processes restarted.
  serve(app, ROUTES.healthz, (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Readiness: whether this process should get traffic.
  serve(app, ROUTES.readyz, async (_req, res) => {
    if (deps.shuttingDown()) {
      res.status(503).json({ status: 'not ready', failing: ['shutting-down'] });
      return;
    }
    const report = await deps.health();
    const failing = notReady(report);
    res.status(failing.length === 0 ? 200 : 503).json({
      status: failing.length === 0 ? 'ready' : 'not ready',
      ...(failing.length === 0 ? {} : { failing }),
    });
  });
  // The detailed view, for people: every check, the heartbeat's age and this process's worker.
  serve(app, ROUTES.health, async (_req, res) => {
    const report = await deps.health();
    const failing = notReady(report);
    const ok = failing.length === 0 && report.worker?.state !== 'backing-off';
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ok' : 'degraded',
      ...(failing.length === 0 ? {} : { failing }),
      ...report,
    });
  });

  docsRoutes(app);
  dashboardRoutes(app);

  app.use(noRoute);
  if (limits) {
    // An accept request refused before its script ran (a bad body, an unknown coupon) still
    // counts against its client.
    const charge: express.ErrorRequestHandler = (err, _req, res, next) => {
      limits.chargeUnadmitted(res);
      next(err);
    };
    app.use(charge);
  }
  app.use(errorHandler(deps.logger));
  return app;
}
