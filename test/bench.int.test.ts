/**
 * `npm run bench`'s machinery in its smallest setting: contenders run as child processes the way
 * the orchestrator runs them (settings as the argument, one report over IPC), against the test
 * run's PostgreSQL, each on a fresh database of its own. It checks that they measure, account
 * CPU, and check their stores, and that the stores hold every acknowledged order and no
 * oversell. How fast anything is stays in bench/: no figure is asserted here.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { runContender } from '../bench/harness/parent.js';
import { isSkipped, type ContenderReport, type ContenderResult } from '../bench/harness/result.js';
import { readSettings } from '../bench/harness/settings.js';

const projectDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const settings = readSettings({
  BENCH_QUICK: '1',
  BENCH_WARMUP_SECONDS: '1',
  BENCH_SECONDS: '1',
  BENCH_LATENCY_SECONDS: '1',
  BENCH_IN_FLIGHT: '200',
  BENCH_SELLOUT_STOCK: '50',
  BENCH_DECIDER_BUYERS: '1000',
  BENCH_FLOOR_EVENTS: '100',
});

function run(name: string, file: string, variant?: string): Promise<ContenderReport> {
  return runContender(
    { name, title: name, file: path.join(projectDirectory, 'bench', 'contenders', file), ...(variant === undefined ? {} : { variant }) },
    settings,
    ['--import', 'tsx'],
    { cwd: projectDirectory, env: { ...process.env, DATABASE_URL: inject('databaseUrl') } },
  );
}

function measured(report: ContenderReport): ContenderResult {
  if (isSkipped(report)) throw new Error(`${report.name} did not run: ${report.skipped}`);
  return report;
}

describe('npm run bench, smallest setting', () => {
  it('runs contenders in child processes and checks their stores', async () => {
    const [decider, engine, baseline, floor] = (
      await Promise.all([
        run('decider', 'decider.ts'),
        run('engine', 'engineInProcess.ts'),
        run('postgres-2', 'postgresPerOrder.ts', '2'),
        run('floor', 'durableFloor.ts'),
      ])
    ).map(measured);

    for (const report of [decider!, engine!, baseline!, floor!]) {
      expect(report.ordersPerSecond, report.name).toBeGreaterThan(0);
      expect(report.cpu.totalUsPerOrder, report.name).toBeGreaterThan(0);
      expect(report.check.lostAcknowledgements, report.name).toBe(0);
      expect(report.check.oversold, report.name).toBe(0);
      expect(report.check.stored, report.name).toBeGreaterThanOrEqual(report.check.acknowledged);
      expect(report.notes, report.name).toEqual([]);
    }
    for (const report of [decider!, engine!, baseline!]) {
      expect(report.check.sellOutSold, report.name).toBe(50);
    }
    // The stored check of the engine reads the journal back: every order, of all three phases.
    expect(engine!.check.acknowledged).toBe(engine!.check.stored);
    for (const report of [engine!, baseline!]) {
      if ('notApplicable' in report.latency) throw new Error(`${report.name} has no latency`);
      expect(report.latency.orders, report.name).toBeGreaterThan(0);
      expect(report.latency.unanswered, report.name).toBe(0);
    }
    expect(engine!.batch?.meanEvents).toBeGreaterThan(0);
    expect(baseline!.conditions).toMatchObject({ clients: 2, fsync: 'on', synchronous_commit: 'on' });
  });
});
