/**
 * createApp(deps) builds the whole HTTP API from its dependencies, so tests call `app.request()` on the
 * same app production serves. server.ts only listens.
 */
import { HTTPException } from 'hono/http-exception';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import { isPostgresUnavailable } from '../lib/db.js';
import { createKeyStore } from '../lib/keys/store.js';
import { createSecretBox } from '../lib/secret-box.js';
import type { ApiDeps } from './deps.js';
import { auditTrail } from './audit.js';
import { apiKeyAuth, bearerToken, sessionCookieName } from './auth.js';
import { mountConsole } from './console/index.js';
import { mountPortal } from './portal/index.js';
import { createSessionStore } from '../lib/console/sessions.js';
import { getCookie } from 'hono/cookie';
import { mountDocs } from './docs.js';
import { createMetrics } from './metrics.js';
import { parseCidrs, rateLimit } from './rate-limit.js';
import { isTemporalCallCancelled, isTemporalUnreachable, temporalBudget } from './temporal-budget.js';
import { ApiError, errorResponse, SERVICE_STATUS } from './errors.js';
import { ServiceError } from '../lib/errors.js';
import { newRouter } from './router.js';
import { apiKeyRoutes } from './routes/keys/index.js';
import { portalLinkRoutes } from './routes/keys/portal-links.js';
import { auditRoutes } from './routes/audit/index.js';
import { backupRoutes } from './routes/backups/index.js';
import { deployRoutes } from './routes/deploys/index.js';
import { scheduleRoutes } from './routes/schedules/index.js';
import { statusRoutes } from './routes/status/index.js';
import { createSubscriptionService } from '../lib/subscriptions/service.js';
import { subscriptionRoutes } from './routes/subscriptions/index.js';
import { subscriptionBatchRoutes } from './routes/subscriptions/batch.js';
import { systemCheckRoutes } from './routes/status/system-check.js';
import { webhookRoutes } from './routes/webhooks/index.js';

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function createApp(deps: ApiDeps) {
  if (deps.apiKeys.length === 0) throw new Error('createApp needs at least one API key');
  const keyStore = deps.keyStore ?? createKeyStore({ pool: deps.pool, envKeys: deps.apiKeys });
  const secrets = deps.secrets ?? createSecretBox(deps.config.encryption);
  const app = newRouter();

  app.use('*', requestId({ headerName: 'X-Request-Id' }));
  app.use(
    '*',
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"], // Swagger UI sets inline styles
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        objectSrc: ["'none'"],
      },
    }),
  );
  // CORS is off unless API_CORS_ORIGINS names the browser origins allowed to call the API.
  if (deps.config.corsOrigins.length > 0) {
    app.use(
      '*',
      cors({
        origin: deps.config.corsOrigins,
        allowHeaders: ['Authorization', 'Content-Type'],
        exposeHeaders: ['X-Request-Id', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining'],
        maxAge: 600,
      }),
    );
  }
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    deps.log.info(
      {
        requestId: c.get('requestId'),
        keyId: c.get('keyId'),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
      },
      'request',
    );
  });
  app.use(
    '*',
    bodyLimit({
      maxSize: deps.config.bodyLimitBytes,
      onError: (c) =>
        errorResponse(c, 413, 'payload_too_large', `Request body larger than ${deps.config.bodyLimitBytes} bytes`),
    }),
  );

  const metrics = createMetrics(deps);
  app.use('*', metrics.http);
  const sessions = createSessionStore({
    pool: deps.pool,
    ttlMs: deps.config.consoleSessionTtlMs,
    idleMs: deps.config.consoleIdleTimeoutMs,
  });
  // Before every route, and before the key is checked: 401s, /ready and /metrics count.
  app.use(
    '*',
    rateLimit({
      perMinute: deps.config.rateLimitPerMinute,
      trustedProxies: parseCidrs(deps.config.trustedProxies),
      // The credentials apiKeyAuth and the console read: the bearer key, else the session cookie.
      credential: (c) => {
        const token = bearerToken(c);
        if (token) return { id: `key:${token}`, isValid: async () => !!(await keyStore.authenticate(token)) };
        const cookie = getCookie(c, sessionCookieName(c));
        if (!cookie) return undefined;
        return {
          id: `session:${cookie}`,
          isValid: async () => {
            const session = await sessions.find(cookie);
            return !!session && !!(await keyStore.principalById(session.keyId));
          },
        };
      },
    }),
  );
  app.get('/metrics', metrics.handler);

  app.get('/health', (c) => c.json({ status: 'ok' }));

  app.get('/ready', async (c) => {
    const [postgres, temporal] = await Promise.allSettled([
      withTimeout(deps.pool.query('SELECT 1'), 1500),
      withTimeout(
        deps.temporal.connection.withDeadline(Date.now() + 1500, () =>
          deps.temporal.connection.workflowService.getSystemInfo({}),
        ),
        1500,
      ),
    ]);
    // Which dependency is down, for anyone (a load balancer); why, only for a caller with a valid key: the error
    // text names hosts, ports and users.
    const token = bearerToken(c);
    const authenticated = token ? await keyStore.authenticate(token).catch(() => undefined) : undefined;
    const state = (r: PromiseSettledResult<unknown>) =>
      r.status === 'fulfilled' ? 'ok' : authenticated ? String((r.reason as Error).message) : 'unavailable';
    const checks = { postgres: state(postgres), temporal: state(temporal) };
    const failed = Object.entries(checks).filter(([, v]) => v !== 'ok');
    if (failed.length === 0) return c.json({ status: 'ready', checks });
    return errorResponse(c, 503, 'unavailable', `Not ready: ${failed.map(([k]) => k).join(', ')}`, checks);
  });

  mountDocs(app, '0.1.0');

  mountConsole({ ...deps, keyStore, sessions, app });
  mountPortal({ ...deps, keyStore, sessions, app });

  app.use('/v1/*', apiKeyAuth(keyStore, sessions));
  app.use('/v1/*', auditTrail({ pool: deps.pool, log: deps.log, trustedProxies: deps.config.trustedProxies }));
  app.use('/v1/*', temporalBudget(deps.temporal.connection, deps.probe));
  app.route('/v1', apiKeyRoutes(deps, keyStore));
  app.route('/v1', portalLinkRoutes(deps, keyStore));
  app.route('/v1', systemCheckRoutes(deps));
  app.route('/v1', webhookRoutes({ ...deps, secrets }));
  // One service for both: its import starts share one limiter.
  const subscriptions = createSubscriptionService(deps);
  app.route('/v1', subscriptionRoutes(subscriptions, deps.config.timezone));
  app.route('/v1', subscriptionBatchRoutes(subscriptions, deps.config.timezone));
  app.route('/v1', backupRoutes(deps));
  app.route('/v1', deployRoutes(deps));
  app.route('/v1', scheduleRoutes(deps));
  app.route('/v1', statusRoutes(deps));
  app.route('/v1', auditRoutes(deps));

  app.notFound((c) => errorResponse(c, 404, 'not_found', `No route for ${c.req.method} ${c.req.path}`));

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err.status, err.code, err.message, err.details);
    if (err instanceof ServiceError)
      return errorResponse(c, SERVICE_STATUS[err.code], err.code, err.message, err.details);
    // A dependency that did not answer: 503 with Retry-After, the log line naming which.
    const unavailable = (which: string, message: string) => {
      deps.log.warn({ err, requestId: c.get('requestId') }, `${which} did not answer`);
      c.header('Retry-After', '5');
      return errorResponse(c, 503, 'unavailable', message);
    };
    if (isTemporalUnreachable(err)) {
      deps.probe?.noteUnreachable(err.message);
      return unavailable(
        'Temporal',
        'Temporal did not answer in time; try again shortly (a start that reached it is refused as a duplicate, never run twice)',
      );
    }
    if (isTemporalCallCancelled(err)) {
      return unavailable('Temporal', 'Temporal did not answer in time; try again shortly');
    }
    if (isPostgresUnavailable(err)) {
      return unavailable(
        'PostgreSQL',
        'PostgreSQL is unavailable; try again shortly (an event sent again with the same idempotencyKey is stored once)',
      );
    }
    if (err instanceof HTTPException) {
      if (err.status === 400 && /malformed json/i.test(err.message)) {
        return errorResponse(c, 400, 'malformed_json', 'Request body is not valid JSON');
      }
      if (err.status === 413) return errorResponse(c, 413, 'payload_too_large', err.message);
      return errorResponse(c, err.status, err.status < 500 ? 'bad_request' : 'internal', err.message);
    }
    deps.log.error({ err, requestId: c.get('requestId') }, 'unhandled error');
    return errorResponse(c, 500, 'internal', 'Internal error');
  });

  return app;
}
