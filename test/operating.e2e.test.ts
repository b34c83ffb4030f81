/**
 * What an operator runs into, with the real entry point as a child process: a checkout or a
 * data directory under a 0700 directory (root's home, `mktemp -d`), a mounted volume that is not
 * empty, start-up failures that must be one line, a port or a database already taken by another
 * engine, and a graceful stop under load on the embedded database.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { TestClient, type Message } from './e2e/client.js';
import { MainProcess } from './e2e/mainProcess.js';
import { createTestDatabase } from './support/testDatabase.js';

const jwtSecret = 'operating-e2e-secret-operating-e2e-secret';
const adminToken = 'operating-e2e-admin-token';
const secrets = { SECKILL_JWT_SECRET: jwtSecret, SECKILL_ADMIN_TOKEN: adminToken };
const temporaryDirectories: string[] = [];

afterAll(async () => {
  for (const directory of temporaryDirectories) await rm(directory, { recursive: true, force: true });
});

/** A directory only its owner may enter, as root's home and every `mktemp -d` are. */
async function privateDirectory(): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'seckill-operating-'));
  temporaryDirectories.push(directory);
  expect((await stat(directory)).mode & 0o777).toBe(0o700);
  return directory;
}

function token(userId: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).sign(new TextEncoder().encode(jwtSecret));
}

function admin(port: number, method: string, route: string, body?: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${route}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** stderr of a start that failed: exactly one line, which is returned. */
async function oneLineFailure(main: MainProcess): Promise<string> {
  const { code } = await main.exited;
  expect(code).toBe(1);
  const lines = main.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  expect(main.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('starting the server', () => {
  it('serves from a 0700 working directory on its default ./.seckill, and from a SECKILL_DATA_DIR that already holds files', async () => {
    const checkout = await privateDirectory();
    const first = MainProcess.start({ PORT: '0', ...secrets }, checkout);
    const port = await first.listening();
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    expect((await admin(port, 'POST', '/admin/items', { id: '3', name: 'Phone', sellerId: '7', stock: 2 })).status).toBe(201);
    const buyer = await TestClient.connect(`ws://127.0.0.1:${port}/ws?token=${await token('31')}`);
    expect(await buyer.request({ type: 'buy', item: '3', qty: 1 })).toMatchObject({ type: 'order' });
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    expect((await stat(path.join(checkout, '.seckill', 'postgresql', 'PG_VERSION'))).isFile()).toBe(true);
    expect((await stat(checkout)).mode & 0o777).toBe(0o700);

    const volume = path.join(await privateDirectory(), 'volume');
    await mkdir(path.join(volume, 'lost+found'), { recursive: true });
    await writeFile(path.join(volume, 'notes.txt'), 'the operator was here\n');
    const second = MainProcess.start({ PORT: '0', SECKILL_DATA_DIR: volume, ...secrets });
    const secondPort = await second.listening();
    expect((await fetch(`http://127.0.0.1:${secondPort}/readyz`)).status).toBe(200);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('refuses a data directory it cannot use with one line that names it and the fix', async () => {
    const file = path.join(await privateDirectory(), 'a-file');
    await writeFile(file, 'not a directory');
    const line = await oneLineFailure(MainProcess.start({ PORT: '0', SECKILL_DATA_DIR: file, ...secrets }));
    expect(line).toBe(
      `seckill: could not start: PostgreSQL data directory ${file} exists but is not a directory; ` +
        'fix: point SECKILL_DATA_DIR at a directory',
    );
  });

  it('refuses a port that another server holds, and the first one keeps every request', async () => {
    const first = MainProcess.start({ PORT: '0', DATABASE_URL: (await createTestDatabase('e2e_port_a')).url, ...secrets });
    const port = await first.listening();
    expect((await admin(port, 'POST', '/admin/items', { id: '42', name: 'Phone', sellerId: '7', stock: 5 })).status).toBe(201);

    const second = MainProcess.start({ PORT: String(port), DATABASE_URL: (await createTestDatabase('e2e_port_b')).url, ...secrets });
    const line = await oneLineFailure(second);
    expect(line).toBe(
      `seckill: could not start: cannot listen on 127.0.0.1:${port}: the port is already in use by another program ` +
        '(EADDRINUSE); fix: stop that program, or set PORT to a free port',
    );
    const statuses = await Promise.all(
      Array.from({ length: 10 }, async () => (await fetch(`http://127.0.0.1:${port}/items/42`)).status),
    );
    expect(statuses).toEqual(Array.from({ length: 10 }, () => 200));
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
  });

  it('refuses a second engine on the same database, naming the one that holds it', async () => {
    const database = (await createTestDatabase('e2e_one_engine')).url;
    const first = MainProcess.start({ PORT: '0', DATABASE_URL: database, ...secrets });
    await first.listening();
    const line = await oneLineFailure(MainProcess.start({ PORT: '0', DATABASE_URL: database, ...secrets }));
    expect(line).toMatch(
      new RegExp(
        `^seckill: could not start: another seckill engine already serves database ${new URL(database).pathname.slice(1)} ` +
          `on 127\\.0\\.0\\.1:\\d+ \\(held by "seckill engine pid ${first.child.pid} on ${os.hostname()}", backend pid \\d+, ` +
          'from 127\\.0\\.0\\.1, since .*\\); fix: stop that engine first',
      ),
    );
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    // Once the first is gone, the database is free again.
    const third = MainProcess.start({ PORT: '0', DATABASE_URL: database, ...secrets });
    await third.listening();
    third.child.kill('SIGTERM');
    expect((await third.exited).code).toBe(0);
  });

  it('refuses a second server on the same embedded data directory', async () => {
    const dataDirectory = path.join(await privateDirectory(), 'data');
    const first = MainProcess.start({ PORT: '0', SECKILL_DATA_DIR: dataDirectory, ...secrets });
    await first.listening();
    const line = await oneLineFailure(MainProcess.start({ PORT: '0', SECKILL_DATA_DIR: dataDirectory, ...secrets }));
    expect(line).toContain(`PostgreSQL data directory ${dataDirectory}/postgresql is in use by a server`);
    expect(line).toContain(`started by the running process ${first.child.pid}`);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
  });
});

describe('stopping the server on the embedded database under load', () => {
  it('on Ctrl-C, answers or leaves untouched every request, commits, closes every socket with 1001, then stops PostgreSQL', async () => {
    const dataDirectory = path.join(await privateDirectory(), 'data');
    const unlimited = String(1_000_000);
    const environment = {
      PORT: '0',
      SECKILL_DATA_DIR: dataDirectory,
      // The buyers press as fast as they can: this test is about stopping, not rate limits.
      SECKILL_USER_REQUESTS_PER_SECOND: unlimited,
      SECKILL_USER_BURST_REQUESTS: unlimited,
      SECKILL_CONNECTION_REQUESTS_PER_SECOND: unlimited,
      SECKILL_CONNECTION_BURST_REQUESTS: unlimited,
      ...secrets,
    };
    const main = MainProcess.start(environment, undefined, true);
    const port = await main.listening();
    const stock = 1_000_000;
    expect(
      (await admin(port, 'POST', '/admin/items', { id: '9', name: 'Phone', sellerId: '7', stock, perUserLimit: stock })).status,
    ).toBe(201);

    // 500 buyers, each keeping 4 buys in flight for as long as its connection is open.
    const buyers = await Promise.all(
      Array.from({ length: 500 }, async (_, index) => TestClient.connect(`ws://127.0.0.1:${port}/ws?token=${await token(String(1_000 + index))}`)),
    );
    let sent = 0;
    const outcomes: Promise<Message | 'closed'>[] = [];
    const keepBuying = (buyer: TestClient): void => {
      const reply = Promise.race([buyer.request({ type: 'buy', item: '9', qty: 1 }), buyer.closed.then(() => 'closed' as const)]);
      sent += 1;
      outcomes.push(reply);
      void reply.then((outcome) => {
        if (outcome !== 'closed' && outcome.type === 'order') keepBuying(buyer);
      }, () => undefined);
    };
    for (const buyer of buyers) for (let inFlight = 0; inFlight < 4; inFlight++) keepBuying(buyer);
    await main.waitForLine(() => false, 1_500).catch(() => undefined);
    expect(sent).toBeGreaterThan(800);

    // Ctrl-C reaches every process of the terminal's group. PostgreSQL must not be among them:
    // it has to outlive the engine's last commit.
    main.interruptGroup();
    const closes = await Promise.all(buyers.map((buyer) => buyer.closed));
    const { code } = await main.exited;
    const settled = await Promise.all(outcomes);
    const acknowledged = settled.filter((outcome) => outcome !== 'closed' && outcome.type === 'order').length;
    const otherReplies = settled.filter((outcome) => outcome !== 'closed' && outcome.type !== 'order');

    expect(code).toBe(0);
    expect(main.lines.some((line) => line.msg === 'stopped cleanly')).toBe(true);
    // A graceful stop fails no flush and loses no slice: nothing at warn level or above.
    expect(main.lines.filter((line) => line.level >= 40).map((line) => line.msg)).toEqual([]);
    expect(closes.map((close) => close.code)).toEqual(buyers.map(() => 1001));
    // Whatever was answered in the shutdown was answered truthfully: an order, or unavailable.
    expect(otherReplies.filter((reply) => reply === 'closed' || reply.reason !== 'unavailable')).toEqual([]);
    expect(acknowledged).toBeGreaterThan(0);

    // On the same data directory: exactly the acknowledged orders were sold. Nothing
    // acknowledged is missing, and no request left without a reply was carried out.
    const again = MainProcess.start(environment);
    const againPort = await again.listening();
    const view = (await (await fetch(`http://127.0.0.1:${againPort}/items/9`)).json()) as { sold: number; available: number };
    expect(view).toMatchObject({ sold: acknowledged, available: stock - acknowledged });
    again.child.kill('SIGTERM');
    expect((await again.exited).code).toBe(0);
  });
});
