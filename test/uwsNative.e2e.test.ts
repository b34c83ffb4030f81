/**
 * uWebSockets.js silently falls back to a slow pure-JavaScript shim when its native binary does
 * not load. This fails when that happens on this machine, and checks that the detector tells
 * the two apart (the package's UWS_USE_FALLBACK switch forces the shim in a child process).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { uwsImplementation } from '../src/edge/uws.js';
import { Harness } from './e2e/harness.js';

const projectDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const detect = `import { uwsImplementation } from './src/edge/uws.ts'; console.log(uwsImplementation());`;

async function detectIn(environment: Record<string, string>): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', detect], {
    cwd: projectDirectory,
    env: { PATH: process.env.PATH ?? '', ...environment },
  });
  return stdout.trim().split('\n').at(-1)!;
}

let harness: Harness | undefined;
afterAll(async () => {
  await harness?.stop();
});

describe('uWebSockets.js', () => {
  it('is the native binary on this machine, in this process and in the running server', async () => {
    expect(uwsImplementation()).toBe('native');
    harness = await Harness.start();
    expect(harness.server.implementation).toBe('native');
    expect(await detectIn({})).toBe('native');
  });

  it('is reported as ws-fallback when the shim serves', async () => {
    expect(await detectIn({ UWS_USE_FALLBACK: '1' })).toBe('ws-fallback');
  });
});
