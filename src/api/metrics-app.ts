import express, { type Express } from 'express';
import type { Logger } from '../domain/ports.js';
import type { ApiMetrics } from './app.js';
import { metricsEndpoint } from './metrics.js';
import { errorHandler, sendProblem } from './problem.js';
import { ROUTES, serve } from './routes/route-table.js';
import { securityHeaders } from './security.js';

/**
 * What a process that runs only the batch worker serves, so that Prometheus
 * can scrape it: GET /metrics, nothing else (none of the API's routes).
 */
export function createMetricsApp(metrics: ApiMetrics, logger: Logger): Express {
  const app = express();
  app.set('etag', false);
  app.disable('x-powered-by');
  app.set('query parser', false);
  app.set('case sensitive routing', true);
  app.use(securityHeaders());
  serve(app, ROUTES.metrics, metricsEndpoint(metrics));
  app.use((req, res) => {
    if (req.path === ROUTES.metrics.path) {
      res.setHeader('Allow', 'GET, HEAD');
      sendProblem(res, 'METHOD_NOT_ALLOWED', `${req.method} is not supported on ${req.path}`);
      return;
    }
    sendProblem(
      res,
      'NOT_FOUND',
      `no route for ${req.method} ${req.path}: this process serves /metrics only`,
    );
  });
  app.use(errorHandler(logger));
  return app;
}
