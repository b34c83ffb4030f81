/**
 * `seckill/client` as a shop gets it: the project is built with its real build configuration
 * into a package folder beside a scratch project, and README.md's client example, copied from
 * the README as it stands, is type-checked against the emitted declarations and run with plain
 * Node 20 (no tsx, and no global WebSocket, so the `ws` fallback) against the real server.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness } from './e2e/harness.js';

const run = promisify(execFile);
const projectRoot = path.resolve(import.meta.dirname, '..');
const typescript = path.join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc');

let harness: Harness;
let scratch: string;
let example: string;

/** The first ```js block of README.md's "The client library" section. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(path.join(projectRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## The client library'));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  if (match === null) throw new Error('README.md has no js example under "The client library"');
  return match[1]!;
}

beforeAll(async () => {
  harness = await Harness.start();
  scratch = await mkdtemp(path.join(tmpdir(), 'seckill-client-'));
  const installed = path.join(scratch, 'node_modules', 'seckill');
  await mkdir(installed, { recursive: true });
  await run(process.execPath, [typescript, '-p', path.join(projectRoot, 'tsconfig.build.json'), '--outDir', path.join(installed, 'dist')], {
    cwd: projectRoot,
  });
  await copyFile(path.join(projectRoot, 'package.json'), path.join(installed, 'package.json'));
  await symlink(path.join(projectRoot, 'node_modules', 'ws'), path.join(scratch, 'node_modules', 'ws'));
  await symlink(path.join(projectRoot, 'node_modules', '@types'), path.join(scratch, 'node_modules', '@types'));
  example = path.join(scratch, 'buyer.mjs');
  await writeFile(example, await readmeExample());
}, 120_000);

afterAll(async () => {
  await harness?.stop();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

async function runExample(userId: string, item: string): Promise<string[]> {
  const { stdout } = await run(process.execPath, [example], {
    cwd: scratch,
    // Below the test's own limit, so that an example that hangs is stopped and its output shown.
    timeout: 40_000,
    env: {
      ...process.env,
      SECKILL_WS_URL: harness.server.wsUrl,
      SECKILL_USER_TOKEN: await harness.token(userId),
      SECKILL_ITEM: item,
    },
  }).catch((error: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`${error.message}\nstdout: ${error.stdout ?? ''}\nstderr: ${error.stderr ?? ''}`);
  });
  return stdout.trim().split('\n');
}

describe("README's client example", () => {
  it('builds to JavaScript with declarations where the package exports point', async () => {
    const manifest = JSON.parse(await readFile(path.join(projectRoot, 'package.json'), 'utf8')) as {
      exports: Record<string, { types: string; default: string }>;
    };
    const entry = manifest.exports['./client']!;
    for (const file of [entry.types, entry.default]) {
      expect(existsSync(path.join(scratch, 'node_modules', 'seckill', file)), file).toBe(true);
    }
  });

  it('type-checks against the emitted declarations, every rejection reason included', async () => {
    const checked = run(
      process.execPath,
      [typescript, '--noEmit', '--allowJs', '--checkJs', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', example],
      { cwd: scratch },
    );
    await expect(checked.catch((error: { stdout: string }) => Promise.reject(new Error(error.stdout)))).resolves.toBeDefined();
  });

  it('runs as written: waits for the sale, reserves, confirms, and explains a refusal', async () => {
    const item = await harness.createItem({ stock: 3, perUserLimit: 1, startsAt: Date.now() + 5_000 });
    // Starts in 5 s: time enough for Node to start the example, so it sees the sale start.
    const first = await runExample('9101', item.id);
    expect(first[0]).toBe(`stock ${item.id}: 3 available, 0 reserved, 0 sold (not_started)`);
    expect(first).toContain(`stock ${item.id}: 3 available, 0 reserved, 0 sold (on_sale)`);
    expect(first.some((line) => line.startsWith('reserved until '))).toBe(true);
    const ordered = first.find((line) => line.startsWith('order '));
    expect(ordered).toMatch(new RegExp(`^order \\d+: 1 of item ${item.id}$`));
    const orders = (await harness.http('GET', '/orders', { token: await harness.token('9101') })).body as { orderId: string }[];
    expect(orders.map((order) => order.orderId)).toEqual([ordered!.split(/[ :]/)[1]]);
    expect(harness.engine.item(item.id)).toMatchObject({ sold: 1, reserved: 0 });

    const again = await runExample('9101', item.id);
    expect(again.at(-1)).toBe('You already hold as many as one buyer may.');
    expect(harness.engine.item(item.id)).toMatchObject({ sold: 1, reserved: 0 });
  });
});
