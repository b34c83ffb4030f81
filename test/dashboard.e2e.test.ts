/**
 * The live dashboard. Over HTTP: the page and its assets come from the server itself with a
 * policy that forbids anything else, and the feed gives public figures without a token,
 * operational ones with the admin token, and 401 with a wrong one. In a real browser (Debian's
 * Chromium, driven by playwright-core): under a load over WebSockets, the page's sold figure
 * moves while the load runs and ends equal to the engine's, and a screenshot is saved to
 * bench/results/dashboard.png. Where Chromium is missing, the browser test is skipped and says
 * how to install it.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DashboardSnapshot } from '../src/server/dashboardFeed.js';
import type { TestClient } from './e2e/client.js';
import { Harness, adminToken } from './e2e/harness.js';
import { chromiumMissing, chromiumPath, launchChromium, type Browser } from './support/chromium.js';

const screenshotPath = path.resolve(import.meta.dirname, '..', 'bench', 'results', 'dashboard.png');
/** Limits high enough that the load below is held back by the engine, not by the rate limits. */
const loadLimits = {
  userRequestsPerSecond: 100_000,
  userBurstRequests: 100_000,
  connectionRequestsPerSecond: 100_000,
  connectionBurstRequests: 100_000,
};

let harness: Harness;

beforeAll(async () => {
  harness = await Harness.start({ limits: loadLimits });
});

afterAll(async () => {
  await harness?.stop();
});

/** Opens the feed and returns its first snapshot, or the refusal. */
async function firstSnapshot(authorization?: string): Promise<{ status: number; snapshot?: DashboardSnapshot }> {
  const controller = new AbortController();
  const response = await fetch(`${harness.httpUrl}/dashboard/events`, {
    headers: authorization === undefined ? {} : { authorization },
    signal: controller.signal,
  });
  if (response.status !== 200) return { status: response.status };
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  while (!text.includes('\n\n')) text += (await reader.read()).value ?? '';
  controller.abort();
  const data = /^data: (.*)$/m.exec(text)![1]!;
  return { status: 200, snapshot: JSON.parse(data) as DashboardSnapshot };
}

describe('the dashboard over HTTP', () => {
  it('serves the page and its assets itself, under a policy that allows nothing from elsewhere', async () => {
    const page = await harness.http('GET', '/dashboard');
    expect(page.status).toBe(200);
    expect(page.contentType).toMatch(/^text\/html/);
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    expect(assets.filter((asset) => !asset.startsWith('data:')).sort()).toEqual(['/dashboard/dashboard.css', '/dashboard/dashboard.js']);
    const response = await fetch(`${harness.httpUrl}/dashboard`);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(response.headers.get('content-security-policy')).toContain("connect-src 'self'");
    for (const asset of assets.filter((each) => !each.startsWith('data:'))) {
      const reply = await harness.http('GET', asset);
      expect(reply.status, asset).toBe(200);
      expect(reply.text, asset).not.toMatch(/https?:\/\//);
    }
  });

  it('feeds public item figures without a token, operations with the admin token, and 401 with a wrong one', async () => {
    const item = await harness.createItem({ stock: 4, name: 'Lamp' });
    const anonymous = await firstSnapshot();
    expect(anonymous.status).toBe(200);
    expect(anonymous.snapshot!.operations).toBeUndefined();
    expect(anonymous.snapshot!.items.find((view) => view.id === item.id)).toEqual(harness.engine.item(item.id));

    const admin = await firstSnapshot(`Bearer ${adminToken}`);
    expect(admin.snapshot!.operations).toMatchObject({
      openConnections: expect.any(Number),
      ackLatencyMs: expect.objectContaining({ p50: expect.any(Number), p99: expect.any(Number) }),
      flushEvents: expect.objectContaining({ max: expect.any(Number) }),
      projectionLag: { events: expect.any(Number), ms: expect.any(Number) },
    });

    expect((await firstSnapshot('Bearer not-the-admin-token')).status).toBe(401);
  });
});

interface Load {
  readonly acknowledged: () => number;
  stop(): Promise<void>;
}

/**
 * Buyers over WebSockets, each keeping `depth` buys in flight, a pause of `pauseMs` after each
 * answer (so the item lasts long enough to be watched on any machine), until stopped or sold out.
 */
function startLoad(clients: TestClient[], itemId: string, depth: number, pauseMs: number): Load {
  let running = true;
  let acknowledged = 0;
  const lane = async (client: TestClient): Promise<void> => {
    while (running) {
      const reply = await client.request({ type: 'buy', item: itemId, qty: 1 });
      if (reply.type === 'order') acknowledged += 1;
      else if (reply.reason === 'sold_out') return;
      else throw new Error(`a buy was refused: ${JSON.stringify(reply)}`);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  const lanes = clients.flatMap((client) => Array.from({ length: depth }, () => lane(client)));
  return {
    acknowledged: () => acknowledged,
    stop: async () => {
      running = false;
      await Promise.all(lanes);
    },
  };
}

async function sellOut(item: { id: string; stock: number }): Promise<void> {
  const buyer = await harness.connect('30001');
  expect(await buyer.request({ type: 'buy', item: item.id, qty: item.stock })).toMatchObject({ type: 'order' });
}

/** Sells 3 units of the item and holds 4 reserved, so its bar shows every part. */
async function holdSome(item: { id: string }): Promise<void> {
  const buyer = await harness.connect('30002');
  expect(await buyer.request({ type: 'buy', item: item.id, qty: 3 })).toMatchObject({ type: 'order' });
  expect(await buyer.request({ type: 'reserve', item: item.id, qty: 4 })).toMatchObject({ type: 'reserved' });
}

async function soldShown(page: Page, itemId: string): Promise<number> {
  const text = await page.locator(`tr[data-item="${itemId}"] [data-field="sold"]`).textContent();
  return Number((text ?? '').replace(/[^0-9]/g, ''));
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the dashboard in a real browser', () => {
  const executable = chromiumPath;
  if (executable === undefined) {
    console.warn(`browser test skipped: ${chromiumMissing}`);
    it.skip(chromiumMissing, () => {});
    return;
  }
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchChromium(executable);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it("shows the sold figure moving under load and ending equal to the engine's", async () => {
    const hot = await harness.createItem({ name: 'Phone (the hot item)', stock: 4_000, perUserLimit: 1_000_000 });
    await sellOut(await harness.createItem({ name: 'Headphones', stock: 3, perUserLimit: 3 }));
    await holdSome(await harness.createItem({ name: 'Watch', stock: 10, perUserLimit: 10 }));
    await harness.createItem({ name: 'Tablet (tomorrow)', stock: 50, startsAt: Date.now() + 86_400_000 });
    const page = await browser.context.newPage();
    const requests: { url: string; authorization: string | undefined }[] = [];
    page.on('request', (request) => requests.push({ url: request.url(), authorization: request.headers().authorization }));
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });

    await page.goto(`${harness.httpUrl}/dashboard`);
    await page.locator(`tr[data-item="${hot.id}"]`).waitFor();
    expect(await page.locator('#operations').isHidden()).toBe(true);
    await page.fill('#admin-token', adminToken);
    await page.click('#admin button[type="submit"]');
    await page.locator('#operations').waitFor({ state: 'visible' });

    const buyers = await Promise.all(Array.from({ length: 8 }, (_, index) => harness.connect(String(20_000 + index))));
    const load = startLoad(buyers, hot.id, 2, 10);
    let shownDuringLoad: number[] = [];
    try {
      await eventually(async () => (await soldShown(page, hot.id)) > 0);
      const first = await soldShown(page, hot.id);
      await eventually(async () => (await soldShown(page, hot.id)) > first);
      const second = await soldShown(page, hot.id);
      shownDuringLoad = [first, second];
      // Figures shown are committed figures: never ahead of the engine.
      expect(second).toBeLessThanOrEqual(harness.engine.item(hot.id)!.sold);
      await eventually(async () => Number((await page.locator('[data-figure="ordersPerSecond"]').textContent())!.replace(/,/g, '')) > 0);
      // A quarter of the stock sold, so the bar shows it.
      await eventually(async () => (await soldShown(page, hot.id)) >= 1_000, 30_000);
      await mkdir(path.dirname(screenshotPath), { recursive: true });
      await page.screenshot({ path: screenshotPath, fullPage: true });
    } finally {
      await load.stop();
    }

    const sold = harness.engine.item(hot.id)!.sold;
    expect(sold).toBe(load.acknowledged());
    await eventually(async () => (await soldShown(page, hot.id)) === sold);
    expect(shownDuringLoad[1]).toBeGreaterThan(shownDuringLoad[0]!);
    expect(shownDuringLoad[1]).toBeLessThan(sold);
    expect(Number(await page.locator('[data-figure="openConnections"]').textContent())).toBeGreaterThanOrEqual(buyers.length);

    // The admin token went only in the feed's Authorization header, never into a URL.
    expect(requests.some((request) => request.url.includes(adminToken))).toBe(false);
    expect(requests.some((request) => request.url.endsWith('/dashboard/events') && request.authorization === `Bearer ${adminToken}`)).toBe(true);
    expect(requests.every((request) => request.url.startsWith(harness.httpUrl))).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });
});
