/**
 * The routes operators and orchestrators call: GET /healthz (the process runs), GET /readyz
 * (every slice serves and storage answers now) and GET /metrics (Prometheus text).
 */
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { ServerContext } from './context.js';
import { canAnswer, guarded, json, markAnswered, watchAbort } from './http.js';

const storageProbeTimeoutMs = 2_000;

export function registerOperationalRoutes(app: TemplatedApp, context: ServerContext): void {
  app.get('/healthz', guarded(context.logger, (response) => json(response, 200, { ok: true })));
  app.get('/readyz', guarded(context.logger, (response) => readiness(response, context)));
  app.get('/metrics', guarded(context.logger, (response) => renderMetrics(response, context)));
}

function readiness(response: HttpResponse, context: ServerContext): void {
  watchAbort(response);
  const { engine } = context;
  if (!context.admission.accepting || engine.isClosed) {
    json(response, 503, { ok: false, reason: 'shutting down' });
    return;
  }
  // Every slice must serve (recovered, and not reloading after a failed flush), the order
  // projection must have caught up with what the journals held at start, and the storage must
  // answer now.
  if (!engine.ready) {
    const reason = engine.orderService.caughtUpSinceStart ? 'recovering' : 'projecting orders';
    json(response, 503, { ok: false, reason });
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), storageProbeTimeoutMs);
  });
  void Promise.race([engine.storageReachable(), timeout]).then((reachable) => {
    clearTimeout(timer);
    if (reachable) json(response, 200, { ok: true });
    else json(response, 503, { ok: false, reason: 'storage unreachable' });
  });
}

function renderMetrics(response: HttpResponse, context: ServerContext): void {
  watchAbort(response);
  const { metrics } = context;
  metrics.render().then(
    (text) => {
      if (!canAnswer(response)) return;
      markAnswered(response);
      response.cork(() => response.writeStatus('200 OK').writeHeader('content-type', metrics.contentType).end(text));
    },
    (error: unknown) => {
      context.logger.error({ err: error }, 'rendering metrics failed');
      json(response, 500, { error: 'internal' });
    },
  );
}
