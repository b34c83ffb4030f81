/**
 * The fault suite's judge: `seckill replay --verify --json`, run as a user runs it, on the
 * databases of a `DATABASE_URL`. Before it judges, the order projection is let catch up (an
 * engine started and idle until every journaled order is in the order tables), so the judge
 * compares settled projections, not a projector still at work.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createEngine } from '../../src/engine.js';

const projectDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsxLoader = pathToFileURL(path.join(projectDirectory, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

export interface Verdict {
  readonly code: number | null;
  readonly stderr: string;
  readonly violations: readonly unknown[];
  readonly itemTotals: readonly { itemId: string; stock: number; available: number; reserved: number; sold: number; inTransfer: number }[];
  readonly events: number;
}

export interface ReplayRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `seckill replay ARGS` on the databases of `databaseUrl`, as a user runs it; `environment` adds to this process's. */
export function runReplay(databaseUrl: string, args: readonly string[], environment: Readonly<Record<string, string>> = {}): Promise<ReplayRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, path.join(projectDirectory, 'src/cli.ts'), 'replay', ...args], {
      cwd: projectDirectory,
      env: { ...process.env, DATABASE_URL: databaseUrl, ...environment },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export async function settleProjections(databaseUrl: string, extraInventoryDatabaseUrls: readonly string[] = []): Promise<void> {
  const engine = await createEngine({ databaseUrl, extraInventoryDatabaseUrls });
  try {
    await engine.idle();
    if (!(await engine.orderService.whenProjected(60_000))) throw new Error('the order projection did not catch up within 60 s');
  } finally {
    await engine.close();
  }
}

/** `extraInventoryDatabaseUrls`: the engine's other inventory databases, as SECKILL_INVENTORY_DATABASE_URLS. */
export async function judge(databaseUrl: string, extraInventoryDatabaseUrls: readonly string[] = []): Promise<Verdict> {
  await settleProjections(databaseUrl, extraInventoryDatabaseUrls);
  const run = await runReplay(databaseUrl, ['--verify', '--json'], { SECKILL_INVENTORY_DATABASE_URLS: extraInventoryDatabaseUrls.join(',') });
  if (run.stdout.trim() === '') return { code: run.code, stderr: run.stderr, violations: [run.stderr], itemTotals: [], events: 0 };
  const outcome = JSON.parse(run.stdout) as Omit<Verdict, 'code' | 'stderr'>;
  return { code: run.code, stderr: run.stderr, violations: outcome.violations, itemTotals: outcome.itemTotals, events: outcome.events };
}
