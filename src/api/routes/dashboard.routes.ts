import type { IRouter } from 'express';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendProblem } from '../problem.js';
import { pageHeaderSetter } from '../security.js';
import { ROUTES, serve } from './route-table.js';

/** The page's own files, beside this module's folder (scripts/build.mjs copies them into dist/). */
const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'dashboard');
/** uPlot's build, found as Node resolves the package (in dist/ too). */
const UPLOT_DIR = join(
  dirname(createRequire(import.meta.url).resolve('uplot/package.json')),
  'dist',
);

/**
 * The only files served under /dashboard/assets/: a name outside this list is 404.
 * uPlot's files change only with the package, so a browser may keep them an hour;
 * the page's own script and styles change with every deployment and stay
 * `no-store`, so a reload never mixes a new page with an old script.
 */
const ASSETS: Readonly<Record<string, { readonly path: string; readonly cache: boolean }>> = {
  'dashboard.js': { path: join(PAGE_DIR, 'dashboard.js'), cache: false },
  'dashboard.css': { path: join(PAGE_DIR, 'dashboard.css'), cache: false },
  'uPlot.iife.min.js': { path: join(UPLOT_DIR, 'uPlot.iife.min.js'), cache: true },
  'uPlot.min.css': { path: join(UPLOT_DIR, 'uPlot.min.css'), cache: true },
};

/**
 * The page loads its own files and calls this service only: no inline script
 * or style (uPlot styles its elements through the DOM, which a policy does not
 * restrict), and no form submission, so a credential typed before the script
 * ran can never land in a URL.
 */
const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join(';');

/**
 * GET /dashboard: the operator's live view of the events. The page holds no
 * data; it asks the operator for a credential and calls the operator API with it
 * (GET /coupons, GET /coupons/:id/stats, the open/close/pause/resume actions).
 */
export function dashboardRoutes(router: IRouter): void {
  // A page and its assets are documents: helmet's headers for those, and the page's policy.
  const pageHeaders = pageHeaderSetter(DASHBOARD_CSP);
  serve(router, ROUTES.dashboard, (_req, res, next) => {
    pageHeaders(res);
    res.type('text/html');
    res.sendFile(join(PAGE_DIR, 'index.html'), { etag: false, lastModified: false }, (err) => {
      if (err) next(err);
    });
  });

  serve(router, ROUTES.dashboardAsset, (req, res, next) => {
    const file = String(req.params.file);
    const asset = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
    if (asset === undefined) {
      sendProblem(res, 'FILE_NOT_FOUND', `no file ${file} under /dashboard/assets/`);
      return;
    }
    pageHeaders(res);
    if (asset.cache) res.setHeader('Cache-Control', 'public, max-age=3600');
    const options = asset.cache ? {} : { etag: false, lastModified: false };
    res.sendFile(asset.path, options, (err) => {
      if (err) next(err);
    });
  });
}
