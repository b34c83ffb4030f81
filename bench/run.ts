/**
 * `npm run bench`: every contender, side by side, in one run on one machine.
 *
 *   npm run bench                          # a few minutes; writes bench/results/<date>.{json,md,svg}
 *   BENCH_QUICK=1 npm run bench            # a smoke run of a few seconds per contender
 *   BENCH_CONTENDERS=decider,engine npm run bench
 *   DATABASE_URL=postgres://… npm run bench   # PostgreSQL contenders on your server, a fresh database each
 *   BENCH_NOTE='Taken with other work on the machine.' npm run bench   # a sentence the report shows as it is
 *
 * Each contender runs in a child process of its own (as pino's benchmarks do), one after the
 * other, so none warms or slows another; those that need PostgreSQL start a server of their own.
 * Settings are in bench/harness/settings.ts. For each contender the run measures: the maximum
 * orders/s in a closed loop; the CPU per order of its process and its store's server over that
 * window, from /proc; the ack latency at a fixed offered load of half that maximum, in an open
 * loop; the batch sizes; and, after a sell-out of a small stock, the oversell and the lost
 * acknowledgements, counted against what the store holds. The last line is one JSON object.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runContender, type ContenderEntry } from './harness/parent.js';
import { isSkipped, type ContenderReport } from './harness/result.js';
import { readSettings, type BenchSettings } from './harness/settings.js';
import { renderChart } from './report/chart.js';
import { combineRounds } from './report/rounds.js';
import { machineLine, renderMarkdown, renderTable, summaryLine, type BenchRun } from './report/markdown.js';
import { startScriptFlags } from './support/processes.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The project's root: this file runs as dist/bench/run.js. */
const projectDirectory = path.resolve(here, '..', '..');

function contenderEntries(settings: BenchSettings): ContenderEntry[] {
  return [
    { name: 'decider', title: 'Pure decider (decide + evolve)', file: 'decider.js' },
    { name: 'engine', title: 'Engine in-process (durable)', file: 'engineInProcess.js' },
    { name: 'engine-ws', title: 'Engine over WebSocket (durable)', file: 'engineWebSocket.js' },
    ...settings.baselineClients.map((clients) => ({
      name: `postgres-${clients}`,
      title: `PostgreSQL, one transaction per order, ${clients} clients`,
      file: 'postgresPerOrder.js',
      variant: String(clients),
    })),
    { name: 'redis-always', title: 'Redis + Lua, appendfsync always', file: 'redisLua.js', variant: 'always', needsRedis: true },
    { name: 'redis-memory', title: 'Redis + Lua, no persistence', file: 'redisLua.js', variant: 'memory', needsRedis: true },
    { name: 'floor', title: 'Durable floor (one row per batch)', file: 'durableFloor.js' },
  ];
}

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((directory) => directory !== '' && existsSync(path.join(directory, program)));
}

function uptimeLine(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `load average: ${os.loadavg().map((value) => value.toFixed(2)).join(', ')}`;
  }
}

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: projectDirectory, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: projectDirectory, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit} (with uncommitted changes)` : commit;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const settings = readSettings(process.env);
  const nodeFlags = startScriptFlags(projectDirectory);
  const cpus = os.cpus();
  const run: BenchRun = {
    startedAt: new Date().toISOString(),
    finishedAt: '',
    commit: gitCommit(),
    machine: {
      cpuModel: cpus[0]?.model ?? 'unknown',
      cores: cpus.length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      nodeFlags: nodeFlags.join(' '),
      platform: `${os.type()} ${os.release()}`,
      uptimeBefore: uptimeLine(),
      uptimeAfter: '',
    },
    settings,
    ...(process.env.BENCH_NOTE ? { note: process.env.BENCH_NOTE } : {}),
    contenders: [],
  };
  console.log(`npm run bench — ${machineLine(run)}`);
  console.log(`machine load before: ${run.machine.uptimeBefore}`);
  if (settings.quick) console.log('BENCH_QUICK=1: a smoke run; its figures are not for comparison');

  const redisAvailable = onPath('redis-server');
  const entries = contenderEntries(settings).filter((entry) => settings.contenders === null || settings.contenders.includes(entry.name));
  const rounds = new Map<string, ContenderReport[]>(entries.map((entry) => [entry.name, []]));
  // Every contender once per round, so slow drifts of the machine's load fall on all of them.
  for (let round = 1; round <= settings.rounds; round++) {
    for (const entry of entries) {
      let report: ContenderReport;
      if (entry.needsRedis === true && !redisAvailable) {
        report = {
          name: entry.name,
          title: entry.title,
          skipped: 'redis-server is not on PATH; install it (Debian, Ubuntu: `apt-get install redis-server`) and run again',
        };
      } else {
        console.log(`\n${entry.name}${settings.rounds > 1 ? `, round ${round} of ${settings.rounds}` : ''}: ${entry.title} …`);
        report = await runContender({ ...entry, file: path.join(here, 'contenders', entry.file) }, settings, nodeFlags, { cwd: projectDirectory });
      }
      rounds.get(entry.name)!.push(report);
      console.log(isSkipped(report) ? `${entry.name}: ${report.skipped}` : renderTable([report]));
    }
  }
  for (const entry of entries) run.contenders.push(combineRounds(rounds.get(entry.name)!));
  run.finishedAt = new Date().toISOString();
  run.machine.uptimeAfter = uptimeLine();

  const stamp = run.startedAt.slice(0, 16).replace(/:/g, '-');
  const directory = path.resolve(projectDirectory, settings.resultsDirectory);
  await mkdir(directory, { recursive: true });
  const chartName = `${stamp}.svg`;
  await writeFile(path.join(directory, `${stamp}.json`), `${JSON.stringify(run, null, 2)}\n`);
  await writeFile(path.join(directory, chartName), renderChart(run.contenders));
  await writeFile(path.join(directory, `${stamp}.md`), renderMarkdown(run, chartName));
  console.log(`\n${renderTable(run.contenders)}`);
  console.log(`machine load after: ${run.machine.uptimeAfter}`);
  console.log(`report: ${path.join(settings.resultsDirectory, `${stamp}.md`)} (and .json, .svg)`);
  const failed = run.contenders.some((report) => !isSkipped(report) && (report.check.lostAcknowledgements > 0 || report.check.oversold > 0));
  if (failed) process.exitCode = 1;
  console.log(JSON.stringify(summaryLine(run)));
}

await main();
