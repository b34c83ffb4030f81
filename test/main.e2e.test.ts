/**
 * The real entry point, `src/main.ts`, as a child process: configuration checks, generated
 * secrets printed once, the embedded database, graceful shutdown on SIGTERM with requests in
 * flight, and exit at once on a second signal.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { TestClient, type Message } from './e2e/client.js';
import { eventuallyTrue, MainProcess } from './e2e/mainProcess.js';
import { TcpProxy } from './e2e/tcpProxy.js';
import { createTestDatabase } from './support/testDatabase.js';

const temporaryDirectories: string[] = [];

afterAll(async () => {
  for (const directory of temporaryDirectories) await rm(directory, { recursive: true, force: true });
});

const jwtSecret = 'main-e2e-secret-main-e2e-secret-0123456789';
const adminToken = 'main-e2e-admin-token';

function token(userId: string, secret = jwtSecret): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).sign(new TextEncoder().encode(secret));
}

async function admin(port: number, method: string, route: string, body?: unknown, bearer = adminToken): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${route}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe('src/main.ts', () => {
  it.each([
    [{ PORT: 'eighty' }, /PORT must be an integer/],
    [{ PORT: '70000' }, /PORT must be an integer from 0 to 65535/],
    [{ DATABASE_URL: 'mysql://localhost/shop' }, /DATABASE_URL must be a postgres/],
    [{ SECKILL_WS_BUFFERED_BYTES_MAX: '-1' }, /SECKILL_WS_BUFFERED_BYTES_MAX must be an integer/],
    [{ SECKILL_LOG_LEVEL: 'loud' }, /SECKILL_LOG_LEVEL must be one of/],
    [{ SECKILL_INVENTORY_DATABASE_URLS: 'postgres://127.0.0.1/inventory' }, /SECKILL_INVENTORY_DATABASE_URLS needs DATABASE_URL/],
    [{ SECKILL_SHARDS: 'many' }, /SECKILL_SHARDS must be an integer/],
  ])('refuses to start with %j, naming the variable', async (environment, message) => {
    const main = MainProcess.start(environment);
    const { code } = await main.exited;
    expect(code).toBe(2);
    expect(main.stderr).toMatch(message);
  });

  it('prints generated secrets once, serves with them, and on SIGTERM answers every request in flight before it stops', async () => {
    const database = await createTestDatabase('e2e_main');
    const target = new URL(database.url);
    const proxy = await TcpProxy.start(target.hostname, Number(target.port));
    try {
      const main = MainProcess.start({ PORT: '0', DATABASE_URL: proxy.route(database.url), SECKILL_LOG_LEVEL: 'info' });
      const port = await main.listening();
      const implementation = main.lines.find((line) => line.msg.startsWith('uWebSockets.js implementation'));
      expect(implementation?.msg).toBe('uWebSockets.js implementation: native');
      const jwtLines = main.lines.filter((line) => typeof line.jwtSecret === 'string');
      const adminLines = main.lines.filter((line) => typeof line.adminToken === 'string');
      expect(jwtLines).toHaveLength(1);
      expect(adminLines).toHaveLength(1);
      const printedSecret = jwtLines[0]!.jwtSecret as string;
      const printedAdmin = adminLines[0]!.adminToken as string;
      expect(printedSecret.length).toBeGreaterThanOrEqual(32);

      expect((await admin(port, 'POST', '/admin/items', { id: '1', name: 'x', sellerId: '7', stock: 1 }, 'wrong')).status).toBe(401);
      const created = await admin(port, 'POST', '/admin/items', { id: '1', name: 'Phone', sellerId: '7', stock: 1_000, perUserLimit: 100 }, printedAdmin);
      expect(created.status).toBe(201);
      const clients = await Promise.all(
        Array.from({ length: 20 }, async (_, index) =>
          TestClient.connect(`ws://127.0.0.1:${port}/ws?token=${await token(String(100 + index), printedSecret)}`),
        ),
      );

      // The database hangs, so the buys stay in flight until it is back.
      proxy.freeze();
      const replies: Promise<Message>[] = [];
      for (const client of clients) {
        for (let request = 0; request < 5; request++) replies.push(client.request({ type: 'buy', item: '1', qty: 1 }));
      }
      await eventuallyTrue(async () => /^seckill_requests_in_flight 100$/m.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()));
      main.child.kill('SIGTERM');
      await main.waitForLine((line) => line.msg.startsWith('shutting down'));
      // No new connections, and new requests are answered unavailable at once.
      await expect(TestClient.connect(`ws://127.0.0.1:${port}/ws?token=${await token('999', printedSecret)}`)).rejects.toThrow();
      expect(await clients[0]!.request({ type: 'buy', item: '1', qty: 1 })).toMatchObject({ reason: 'unavailable' });

      proxy.restore();
      const answered = await Promise.all(replies);
      const closes = await Promise.all(clients.map((client) => client.closed));
      expect((await main.exited).code).toBe(0);
      expect(answered.map((reply) => reply.type)).toEqual(Array.from({ length: 100 }, () => 'order'));
      expect(closes.every((close) => close.code === 1001)).toBe(true);
      expect(main.lines.some((line) => line.msg === 'stopped cleanly')).toBe(true);

      // Every acknowledged order is there after a restart, and nothing else; given secrets are not printed.
      const again = MainProcess.start({
        PORT: '0',
        DATABASE_URL: database.url,
        SECKILL_JWT_SECRET: jwtSecret,
        SECKILL_ADMIN_TOKEN: adminToken,
      });
      const secondPort = await again.listening();
      expect(again.lines.some((line) => typeof line.jwtSecret === 'string' || typeof line.adminToken === 'string')).toBe(false);
      const view = (await (await fetch(`http://127.0.0.1:${secondPort}/items/1`)).json()) as { sold: number };
      expect(view.sold).toBe(100);
      again.child.kill('SIGTERM');
      expect((await again.exited).code).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('exits at once on a second signal, while the first one still waits for a request in flight', async () => {
    const database = await createTestDatabase('e2e_main_twice');
    const target = new URL(database.url);
    const proxy = await TcpProxy.start(target.hostname, Number(target.port));
    try {
      const main = MainProcess.start({
        PORT: '0',
        DATABASE_URL: proxy.route(database.url),
        SECKILL_JWT_SECRET: jwtSecret,
        SECKILL_ADMIN_TOKEN: adminToken,
        SECKILL_SHUTDOWN_GRACE_MS: '60000',
      });
      const port = await main.listening();
      expect((await admin(port, 'POST', '/admin/items', { id: '1', name: 'Phone', sellerId: '7', stock: 5 })).status).toBe(201);
      const client = await TestClient.connect(`ws://127.0.0.1:${port}/ws?token=${await token('100')}`);
      // The database hangs: the buy cannot commit, so the graceful shutdown has to wait for it.
      proxy.freeze();
      client.send({ type: 'buy', id: 'stuck', item: '1', qty: 1 });
      await eventuallyTrue(async () => /^seckill_requests_in_flight 1$/m.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()));
      main.child.kill('SIGTERM');
      await main.waitForLine((line) => line.msg.startsWith('shutting down'));
      const secondSignalAt = performance.now();
      main.child.kill('SIGINT');
      const { code } = await main.exited;
      expect(code).toBe(128 + 2);
      expect(performance.now() - secondSignalAt).toBeLessThan(5_000);
      expect(main.lines.some((line) => line.msg === 'second signal: exiting at once')).toBe(true);
      expect(main.lines.some((line) => line.msg === 'stopped cleanly')).toBe(false);
    } finally {
      await proxy.close();
    }
  });

  it('runs on an embedded PostgreSQL in SECKILL_DATA_DIR, and a restart continues where it stopped', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'seckill-main-e2e-'));
    temporaryDirectories.push(directory);
    const environment = {
      PORT: '0',
      SECKILL_DATA_DIR: path.join(directory, 'data'),
      SECKILL_JWT_SECRET: jwtSecret,
      SECKILL_ADMIN_TOKEN: adminToken,
    };
    const first = MainProcess.start(environment);
    const port = await first.listening();
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    expect((await admin(port, 'POST', '/admin/items', { id: '5', name: 'Phone', sellerId: '7', stock: 3 })).status).toBe(201);
    expect((await admin(port, 'PUT', '/admin/blocklist/66')).status).toBe(200);
    const buyer = await TestClient.connect(`ws://127.0.0.1:${port}/ws?token=${await token('55')}`);
    const order = await buyer.request({ type: 'buy', item: '5', qty: 1 });
    expect(order).toMatchObject({ type: 'order' });
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);

    const second = MainProcess.start(environment);
    const secondPort = await second.listening();
    expect(await (await fetch(`http://127.0.0.1:${secondPort}/items/5`)).json()).toMatchObject({ sold: 1, available: 2 });
    const again = await TestClient.connect(`ws://127.0.0.1:${secondPort}/ws?token=${await token('55')}`);
    expect(((await again.request({ type: 'orders' })).orders as { orderId: string }[])[0]?.orderId).toBe(order.orderId);
    const blocked = await TestClient.connect(`ws://127.0.0.1:${secondPort}/ws?token=${await token('66')}`);
    expect(await blocked.request({ type: 'buy', item: '5', qty: 1 })).toMatchObject({ reason: 'blocked' });
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });
});
