import type { IRouter } from 'express';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { openApiDocument } from '../openapi.js';
import { sendProblem } from '../problem.js';
import { pageHeaderSetter } from '../security.js';
import { ROUTES, serve } from './route-table.js';

/** swagger-ui-dist's folder, found as Node resolves the package (in dist/ too). */
const SWAGGER_UI = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** Started by the page: the UI, pointed at this service's document. */
const INIT_SCRIPT = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Coupon issuance API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
`;

/** The only files served under /docs/assets/: a name outside this list is 404. */
const ASSETS: Readonly<Record<string, string>> = {
  'swagger-ui.css': 'swagger-ui.css',
  'swagger-ui-bundle.js': 'swagger-ui-bundle.js',
  'favicon-32x32.png': 'favicon-32x32.png',
};

/**
 * The page loads only this service's own scripts and styles (no CDN); Swagger
 * UI sets inline styles and uses data: images, and fetches /openapi.json.
 */
const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join(';');

/** GET /openapi.json, and the page at /docs that shows it. */
export function docsRoutes(router: IRouter): void {
  // A page and its assets are documents: helmet's headers for those, and the page's policy.
  const pageHeaders = pageHeaderSetter(DOCS_CSP);
  let document: string | undefined;

  serve(router, ROUTES.openapi, (_req, res) => {
    // Built on first use: start-up does not pay for it.
    document ??= JSON.stringify(openApiDocument());
    res.type('application/json').send(document);
  });

  serve(router, ROUTES.docs, (_req, res) => {
    pageHeaders(res);
    res.type('text/html').send(PAGE);
  });

  serve(router, ROUTES.docsAsset, (req, res, next) => {
    const file = String(req.params.file);
    pageHeaders(res);
    if (file === 'init.js') {
      res.type('application/javascript').send(INIT_SCRIPT);
      return;
    }
    const name = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
    if (name === undefined) {
      sendProblem(res, 'FILE_NOT_FOUND', `no file ${file} under /docs/assets/`);
      return;
    }
    // The same for every request until the package is upgraded; an hour keeps reloads cheap.
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.sendFile(join(SWAGGER_UI, name), (err) => {
      if (err) next(err);
    });
  });
}
