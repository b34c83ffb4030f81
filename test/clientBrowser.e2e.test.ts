/**
 * `seckill/client` in a real browser: the client compiled to JavaScript is served as ES
 * modules to headless Chromium, where it uses the browser's own WebSocket to subscribe, see
 * stock, buy, and be refused, against the real server. Skipped, saying how to install it,
 * where Chromium is missing.
 */
import { execFile } from 'node:child_process';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness } from './e2e/harness.js';
import { chromiumMissing, chromiumPath, launchChromium, type Browser } from './support/chromium.js';

const projectRoot = path.resolve(import.meta.dirname, '..');

/** Serves the files under `root`, JavaScript as modules, and an empty page at `/`. */
async function serveStatic(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (pathname === '/') {
      response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>shop</title>');
      return;
    }
    const file = path.join(root, path.normalize(pathname));
    if (!file.startsWith(root + path.sep)) {
      response.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (body) => response.writeHead(200, { 'content-type': 'text/javascript' }).end(body),
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('the client library in a real browser', () => {
  const executable = chromiumPath;
  if (executable === undefined) {
    console.warn(`browser test skipped: ${chromiumMissing}`);
    it.skip(chromiumMissing, () => {});
    return;
  }
  let harness: Harness;
  let browser: Browser;
  let compiled: string;
  let shop: { server: Server; url: string };

  beforeAll(async () => {
    compiled = await mkdtemp(path.join(tmpdir(), 'seckill-client-browser-'));
    const typescript = path.join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    await promisify(execFile)(
      process.execPath,
      [typescript, 'src/client/index.ts', '--outDir', compiled, '--rootDir', '.', '--module', 'es2022', '--moduleResolution', 'bundler', '--target', 'es2022', '--strict', '--skipLibCheck'],
      { cwd: projectRoot },
    );
    [harness, browser, shop] = await Promise.all([Harness.start(), launchChromium(executable), serveStatic(compiled)]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => shop?.server.close(resolve));
    await harness?.stop();
    if (compiled !== undefined) await rm(compiled, { recursive: true, force: true });
  });

  it("subscribes, sees stock, buys, and is refused over the browser's WebSocket", async () => {
    const item = await harness.createItem({ stock: 5, perUserLimit: 1 });
    const token = await harness.token('40001');
    const page = await browser.context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(shop.url);

    // Page code as text: vitest would otherwise rewrite its dynamic import for Node.
    const arguments_ = JSON.stringify({ url: harness.server.wsUrl, token, item: item.id });
    const result = (await page.evaluate(`(async ({ url, token, item }) => {
      const { SeckillClient } = await import('/src/client/index.js');
      const client = new SeckillClient({ url, token: () => token });
      const subscribed = await client.subscribe([item]);
      const first = (await client.stockUpdates([item]).next()).value;
      const order = await client.buy(item, 1);
      const again = await client.buy(item, 1);
      client.close();
      return { standardWebSocket: typeof WebSocket === 'function', subscribed, first, order, again };
    })(${arguments_})`)) as Record<string, unknown>;

    expect(result.standardWebSocket).toBe(true);
    expect(result.subscribed).toEqual({ ok: true, type: 'subscribed', items: [item.id] });
    expect(result.first).toMatchObject({ item: item.id, available: 5, sold: 0, status: 'on_sale' });
    expect(result.order).toMatchObject({ ok: true, type: 'order', item: item.id, qty: 1 });
    expect(result.again).toEqual({ ok: false, reason: 'limit_exceeded' });
    expect(harness.engine.item(item.id)).toMatchObject({ sold: 1 });
    expect(problems).toEqual([]);
  });
});
