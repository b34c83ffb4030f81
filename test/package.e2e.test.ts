/**
 * seckill as its users install it, not as its developers run it:
 *
 * - a production install of a copy of the checkout, `npm install --omit=dev`, builds at install
 *   and serves with `npm start`; `npm run replay` runs without tsx;
 * - the copy packed with `npm pack` and the tarball installed into a scratch project, whose
 *   strict TypeScript (exactOptionalPropertyTypes, library checks on) compiles a program that
 *   imports `createEngine` and `SimulatedClock` from 'seckill' and runs a sale;
 * - the tarball's `seckill serve` is the server process itself, so SIGTERM from a supervisor
 *   reaches the process that drains and stops cleanly.
 *
 * Packages come from npm's cache when they are there (`--prefer-offline`): CI has just run
 * `npm install`, so this costs a copy, not a download.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MainProcess, projectDirectory } from './e2e/mainProcess.js';
import { createTestDatabase } from './support/testDatabase.js';

const secrets = {
  SECKILL_JWT_SECRET: 'package-e2e-secret-package-e2e-secret',
  SECKILL_ADMIN_TOKEN: 'package-e2e-admin-token',
};
const installFlags = ['--prefer-offline', '--no-audit', '--no-fund'];

let scratch: string;
let clone: string;
let consumer: string;

/** The environment of a user's shell: none of the `npm_*` variables `npm test` put around us. */
function userEnvironment(extra: Record<string, string> = {}): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('npm_') && name !== 'DATABASE_URL' && !name.startsWith('SECKILL_')) {
      environment[name] = value;
    }
  }
  // The servers these tests start rehearse a sale as a user's would, with 200 buyers rather than
  // 4,000: the full rehearsal is seconds of both cores, which starves the test files running
  // beside this one. test/rehearsal.e2e.test.ts tests the rehearsal itself.
  return { ...environment, SECKILL_REHEARSAL_BUYERS: '200', ...extra };
}

interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], cwd: string, extra: Record<string, string> = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: userEnvironment(extra), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function succeed(command: string, args: readonly string[], cwd: string, extra?: Record<string, string>): Promise<Finished> {
  const finished = await run(command, args, cwd, extra);
  if (finished.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${finished.code}\n${finished.stdout}\n${finished.stderr}`);
  }
  return finished;
}

/** The files a clone of the checkout has: tracked ones, and new ones not ignored. */
async function copyCheckout(destination: string): Promise<void> {
  const { stdout } = await succeed('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], projectDirectory);
  for (const file of stdout.split('\0').filter((name) => name !== '')) {
    const source = path.join(projectDirectory, file);
    // A file deleted in the work tree but still in the index is not part of a clone made now.
    if (!existsSync(source)) continue;
    await mkdir(path.dirname(path.join(destination, file)), { recursive: true });
    await cp(source, path.join(destination, file));
  }
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'seckill-package-'));
  clone = path.join(scratch, 'seckill');
  consumer = path.join(scratch, 'shop');
  await copyCheckout(clone);
});

afterAll(async () => {
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

describe('a production install of the checkout', () => {
  it('builds at `npm install --omit=dev`, serves with `npm start`, and replays without tsx', async () => {
    await succeed('npm', ['install', '--omit=dev', ...installFlags], clone);
    expect(existsSync(path.join(clone, 'dist', 'src', 'cli.js'))).toBe(true);
    // What a production install leaves out, the start and the replay must not need.
    for (const developmentOnly of ['tsx', 'vitest', 'fast-check']) {
      expect(existsSync(path.join(clone, 'node_modules', developmentOnly))).toBe(false);
    }

    const database = await createTestDatabase('package_start');
    const environment = { PORT: '0', DATABASE_URL: database.url, ...secrets };
    const child = spawn('npm', ['start'], { cwd: clone, env: userEnvironment(environment), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const started = new MainProcess(child);
    try {
      const port = await started.listening();
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      const created = await fetch(`http://127.0.0.1:${port}/admin/items`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secrets.SECKILL_ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: '5', name: 'Phone', sellerId: '7', stock: 3 }),
      });
      expect(created.status).toBe(201);
    } finally {
      // npm and the node it started, together, as a terminal's Ctrl-C would stop them.
      process.kill(-child.pid!, 'SIGINT');
      await started.exited;
    }
    expect(started.lines.some((line) => line.msg === 'stopped cleanly')).toBe(true);

    const replay = await succeed('npm', ['run', '--silent', 'replay', '--', '--verify'], clone, { DATABASE_URL: database.url });
    expect(replay.stdout).toContain('item 5: stock 3 = available 3 + reserved 0 + sold 0');
    expect(replay.stdout).toContain('verified: every invariant holds');
    await database.drop();
  });
});

describe('the packed tarball in another project', () => {
  beforeAll(async () => {
    // The build of the production install above is what `prepare` would run again at pack.
    const packed = await succeed('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', scratch], clone);
    const tarball = path.join(scratch, packed.stdout.trim().split('\n').at(-1)!);
    await mkdir(consumer);
    await writeFile(path.join(consumer, 'package.json'), JSON.stringify({ name: 'shop', private: true, type: 'module' }));
    await cp(path.join(projectDirectory, 'test', 'fixtures', 'consumer'), consumer, { recursive: true });
    await succeed('npm', ['install', ...installFlags, tarball], consumer);
  });

  it('holds the compiled engine and client, their declarations, the migrations and the dashboard, and no sources, tests or maps', async () => {
    const installed = path.join(consumer, 'node_modules', 'seckill');
    expect((await readdir(installed)).sort()).toEqual(['README.md', 'dist', 'docs', 'package.json', 'public', 'sql']);
    expect(existsSync(path.join(installed, 'dist', 'src', 'client', 'index.d.ts'))).toBe(true);
    expect(existsSync(path.join(installed, 'public', 'dashboard', 'index.html'))).toBe(true);
    expect(existsSync(path.join(installed, 'docs', 'PROTOCOL.md'))).toBe(true);
    expect(existsSync(path.join(installed, 'dist', 'src', 'index.d.ts'))).toBe(true);
    expect(existsSync(path.join(installed, 'sql', '001_engine.sql'))).toBe(true);
    const files = await readdir(path.join(installed, 'dist', 'src'), { recursive: true });
    const unwanted = files.filter((file) => /\.test\.|\.map$/.test(file) || (file.endsWith('.ts') && !file.endsWith('.d.ts')));
    expect(unwanted).toEqual([]);
  });

  it("type-checks in a strict consumer project with library checks on, and runs a sale", async () => {
    const compiled = await run(process.execPath, [path.join(projectDirectory, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], consumer);
    expect(compiled.stdout + compiled.stderr).toBe('');
    expect(compiled.code).toBe(0);

    const sale = await succeed(process.execPath, ['out/sale.js'], consumer);
    expect(JSON.parse(sale.stdout.trim().split('\n').at(-1)!)).toEqual({
      sold: 3,
      refused: ['sold_out', 'sold_out'],
      expired: 'token_expired',
      ordersOfUser2: 1,
      view: expect.objectContaining({ id: '42', stock: 3, available: 0, reserved: 0, sold: 3, status: 'sold_out' }),
    });
  });

  it('runs `seckill serve` as the server process itself, which stops cleanly on SIGTERM', async () => {
    const bin = path.join(consumer, 'node_modules', '.bin', 'seckill');
    expect((await succeed(bin, ['version'], consumer)).stdout).toBe('0.1.0\n');
    const unknown = await run(bin, ['start'], consumer);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('seckill: unknown command "start"; fix: run `seckill help` for the commands\n');

    const database = await createTestDatabase('package_serve');
    const child = spawn(bin, ['serve'], {
      cwd: consumer,
      env: userEnvironment({ PORT: '0', DATABASE_URL: database.url, ...secrets }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new MainProcess(child);
    const port = await server.listening();
    // The process a supervisor started is the one that serves: no npm, no shell in between.
    expect(server.lines.find((line) => line.msg.startsWith('listening on'))?.pid).toBe(child.pid);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.lines.at(-1)?.msg).toBe('stopped cleanly');
    await database.drop();
  });

  // uWebSockets.js 20.30 closed a WebSocket upgraded from a promise (after the asynchronous
  // token check) right after its `open`, depending on what the reused memory held
  // (uNetworking/uWebSockets#1929). The compiled server under a CPU profiler hit it on the first
  // connection of its rehearsal every time: that buyer's `buy` was never answered, and the
  // rehearsal gave up after 30 s. The upgrade is now synchronous (src/edge/auth.ts).
  it('keeps every connection it upgrades, under a CPU profiler too: its rehearsal hears every reply', async () => {
    const database = await createTestDatabase('package_profiled');
    const cli = path.join(consumer, 'node_modules', 'seckill', 'dist', 'src', 'cli.js');
    const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${path.join(scratch, 'profiles')}`, cli, 'serve'], {
      cwd: consumer,
      env: userEnvironment({ PORT: '0', DATABASE_URL: database.url, SECKILL_REHEARSAL_BUYERS: '10', ...secrets }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new MainProcess(child);
    try {
      await server.listening();
      expect(server.lines.find((line) => line.msg.startsWith('could not rehearse'))).toBeUndefined();
      expect(server.lines.find((line) => line.msg.startsWith('rehearsed a sale'))).toMatchObject({
        // 10 buyers on 5 units, twice; each time the same 10 press again once it sold out.
        replies: { order: 10, sold_out: 10 + 20 },
      });
    } finally {
      child.kill('SIGTERM');
      await server.exited;
    }
    await database.drop();
  });
});
