/**
 * Debian's Chromium for the browser tests, driven by playwright-core: where it is, and a
 * headless launch with a fresh profile and the flags it needs as root in a container.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const chromiumCandidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
  (candidate): candidate is string => candidate !== undefined && candidate !== '',
);

/** The first Chromium found, or undefined. */
export const chromiumPath = chromiumCandidates.find((candidate) => existsSync(candidate));

/** The name of the skipped test where Chromium is missing: it says what to do. */
export const chromiumMissing = `needs Chromium, found at none of ${chromiumCandidates.join(', ')} (install: apt-get install -y chromium, or set CHROMIUM_PATH)`;

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(executablePath: string): Promise<Browser> {
  const profile = await mkdtemp(path.join(tmpdir(), 'seckill-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1200, height: 820 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
