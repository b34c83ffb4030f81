/**
 * What an operator reads, with the real entry point as a child process: a JWT secret too short
 * for HS256 is refused; without a secret, the log says that user tokens die at restart; the log
 * tells how to reach the embedded database, and that line works; a start against a database
 * that does not answer waits, says what for, and gives up in one line; a HOST that cannot be
 * bound is refused with its reason.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { MainProcess } from './e2e/mainProcess.js';
import { createTestDatabase } from './support/testDatabase.js';

const secrets = {
  SECKILL_JWT_SECRET: 'operator-e2e-secret-operator-e2e-secret',
  SECKILL_ADMIN_TOKEN: 'operator-e2e-admin-token',
};
const temporaryDirectories: string[] = [];

afterAll(async () => {
  for (const directory of temporaryDirectories) await rm(directory, { recursive: true, force: true });
});

/** stderr of a start that failed with `code`: exactly one line, which is returned. */
async function oneLineFailure(main: MainProcess, code: number): Promise<string> {
  expect((await main.exited).code).toBe(code);
  const lines = main.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('secrets', () => {
  it('refuses a JWT secret shorter than 32 bytes, saying how to make one', async () => {
    const line = await oneLineFailure(MainProcess.start({ ...secrets, SECKILL_JWT_SECRET: 'short' }), 2);
    expect(line).toBe(
      'seckill: invalid configuration: SECKILL_JWT_SECRET must be at least 32 bytes for HS256, got 5; ' +
        'generate one with `openssl rand -base64 32`',
    );
  });
});

describe('the embedded database', () => {
  it('says plainly that tokens die at restart without a secret, and how to reach the database with psql', async () => {
    const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'seckill-operator-'));
    temporaryDirectories.push(dataDirectory);
    const main = MainProcess.start({ PORT: '0', SECKILL_DATA_DIR: dataDirectory, SECKILL_ADMIN_TOKEN: secrets.SECKILL_ADMIN_TOKEN });
    await main.listening();
    const warning = main.lines.find((line) => line.msg.startsWith('SECKILL_JWT_SECRET is not set'));
    expect(warning?.msg).toContain('Every user token dies when this process restarts: set SECKILL_JWT_SECRET (at least 32 bytes)');

    const reach = main.lines.find((line) => line.msg.startsWith('embedded PostgreSQL on 127.0.0.1:'));
    const url = /psql (postgres:\/\/\S+)$/.exec(reach?.msg ?? '')?.[1];
    expect(url).toMatch(/^postgres:\/\/postgres:password@127\.0\.0\.1:\d+\/seckill$/);
    // The line works: what it names is the engine's own database.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      expect((await client.query('SELECT count(*)::int AS items FROM seckill.sale_item')).rows).toEqual([{ items: 0 }]);
    } finally {
      await client.end();
    }
    main.child.kill('SIGTERM');
    expect((await main.exited).code).toBe(0);
  });
});

describe('starting against what is not there', () => {
  it('waits for a database that does not answer, saying what for, then gives up in one line', async () => {
    const port = await closedPort();
    const main = MainProcess.start({
      ...secrets,
      PORT: '0',
      DATABASE_URL: `postgres://shop:secret@127.0.0.1:${port}/sales`,
      SECKILL_DATABASE_WAIT_MS: '1500',
    });
    const line = await oneLineFailure(main, 1);
    expect(line).toBe(
      `seckill: could not start: PostgreSQL at 127.0.0.1:${port}/sales did not answer within 2 s: connection refused ` +
        '(ECONNREFUSED); fix: start PostgreSQL, or correct the host and port in DATABASE_URL; SECKILL_DATABASE_WAIT_MS sets how long to wait',
    );
    const waiting = main.lines.filter((entry) => entry.msg.startsWith(`waiting for PostgreSQL at 127.0.0.1:${port}/sales`));
    expect(waiting.length).toBeGreaterThanOrEqual(2);
    expect(main.lines.some((entry) => entry.msg.includes('secret'))).toBe(false);
  });

  it.each([
    ['192.0.2.1', 'this machine has no such address (EADDRNOTAVAIL); fix: set HOST to one of its addresses, such as 127.0.0.1 or 0.0.0.0'],
    ['no-such-host.invalid', /^the host name does not resolve \((ENOTFOUND|EAI_AGAIN)\); fix: set HOST to an address such as 127\.0\.0\.1 or 0\.0\.0\.0$/],
  ])('refuses HOST=%s with the reason', async (host, reason) => {
    const database = await createTestDatabase('operator_host');
    const port = await closedPort();
    const line = await oneLineFailure(MainProcess.start({ ...secrets, HOST: host, PORT: String(port), DATABASE_URL: database.url }), 1);
    const prefix = `seckill: could not start: cannot listen on ${host}:${port}: `;
    expect(line.startsWith(prefix)).toBe(true);
    expect(line.slice(prefix.length)).toMatch(typeof reason === 'string' ? new RegExp(`^${reason.replace(/[()]/g, '\\$&')}$`) : reason);
  });
});
