/**
 * GET /dashboard: the live view of the sale, a page with no build step whose every asset this
 * server serves itself (sales run on networks that cannot reach public CDNs; the page's
 * Content-Security-Policy allows nothing else). GET /dashboard/events is its feed of figures as
 * server-sent events (dashboardFeed.ts).
 *
 * The admin token travels only in the `Authorization` header of the feed's request, never in
 * a URL, so it stays out of access logs, browser history and Referer headers. Without the
 * header the feed carries the public item figures; with a wrong one it is refused with 401.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { packageRoot } from '../packageRoot.js';
import type { ServerContext } from './context.js';
import type { DashboardFeed } from './dashboardFeed.js';
import { guarded, isAdmin, json } from './http.js';

interface Asset {
  readonly contentType: string;
  readonly body: Buffer;
}

const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The page's files, read once at start; they are a few kilobytes. */
function loadAssets(): Map<string, Asset> {
  const folder = path.join(packageRoot(), 'public', 'dashboard');
  const read = (file: string, contentType: string): Asset => ({ contentType, body: readFileSync(path.join(folder, file)) });
  const page = read('index.html', 'text/html; charset=utf-8');
  return new Map([
    ['/dashboard', page],
    ['/dashboard/', page],
    ['/dashboard/dashboard.js', read('dashboard.js', 'text/javascript; charset=utf-8')],
    ['/dashboard/dashboard.css', read('dashboard.css', 'text/css; charset=utf-8')],
  ]);
}

export function registerDashboardRoutes(app: TemplatedApp, context: ServerContext, feed: DashboardFeed): void {
  let assets: Map<string, Asset>;
  try {
    assets = loadAssets();
  } catch (error) {
    // An installation without the page must still sell: only the dashboard is missing.
    context.logger.error({ err: error }, 'the dashboard page cannot be read; GET /dashboard answers 503');
    const missing = { error: 'unavailable', message: 'the dashboard files (public/dashboard) are missing from this installation' };
    app.get('/dashboard', guarded(context.logger, (response) => json(response, 503, missing)));
    app.get('/dashboard/*', guarded(context.logger, (response) => json(response, 503, missing)));
    return;
  }
  for (const [route, asset] of assets) {
    app.get(route, guarded(context.logger, (response) => serve(response, asset)));
  }
  app.get(
    '/dashboard/events',
    guarded(context.logger, (response, request) => {
      const presented = request.getHeader('authorization') !== '';
      const admin = presented && isAdmin(request, context.adminToken);
      if (presented && !admin) {
        json(response, 401, { error: 'unauthorized' });
        return;
      }
      if (feed.full) {
        json(response, 503, { error: 'unavailable', message: 'too many dashboards are open' });
        return;
      }
      feed.open(response, admin);
    }),
  );
}

function serve(response: HttpResponse, asset: Asset): void {
  response.cork(() => {
    response
      .writeStatus('200 OK')
      .writeHeader('content-type', asset.contentType)
      .writeHeader('cache-control', 'no-cache')
      .writeHeader('content-security-policy', contentSecurityPolicy)
      .writeHeader('x-content-type-options', 'nosniff')
      .writeHeader('referrer-policy', 'no-referrer')
      .end(asset.body);
  });
}
