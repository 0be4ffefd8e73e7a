/**
 * `/openapi.json` (OpenAPI 3.1, generated from the same zod schemas that validate requests) and `/docs`, an
 * interactive Swagger UI whose assets opsflow serves itself from the swagger-ui-dist package: no CDN, so the
 * page works on machines without internet.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './router.js';
import { TAGS } from './scoped.js';

const require = createRequire(import.meta.url);
const assetsDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const assets: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>opsflow API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
`;
// Separate file, so a strict Content-Security-Policy (script-src 'self') allows it.
const init = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#ui', deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: 'StandaloneLayout',
  validatorUrl: null });
`;

export function mountDocs(app: OpenAPIHono<AppEnv>, version: string): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API key (`opsk_…` from POST /v1/api-keys, or a bootstrap key from OPSFLOW_API_KEYS). Each operation names the one scope it needs.',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'opsflow',
      version,
      description:
        'Operational chores as durable Temporal workflows: webhooks, subscriptions, backups, deploys, schedules. ' +
        'Every error is `{ "error": { "code", "message", "requestId", "details"? } }`.',
      // OpenAPI 3.1's SPDX `identifier` (the generator's types know only 3.0's `url`).
      license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' } as { name: string },
    },
    // Relative: the document describes the API that serves it, wherever it is deployed.
    servers: [{ url: '/', description: 'This opsflow API' }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
  });
  app.get('/docs', (c) => c.html(page));
  app.get('/docs/assets/init.js', (c) => c.body(init, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/docs/assets/:file', async (c) => {
    const file = c.req.param('file');
    const type = assets[file];
    if (!type) return c.notFound();
    const body = await readFile(path.join(assetsDir, file));
    return c.body(body, 200, { 'content-type': type, 'cache-control': 'public, max-age=86400' });
  });
}
