/**
 * The run's report: the table of every contender with its conditions, the goals of issue 10
 * set against the figures of this same run, and the one summary line machines read. Pure
 * functions of the run's results, so they are tested without running anything.
 */
import { isSkipped, type ContenderReport, type ContenderResult } from '../harness/result.js';
import type { BenchSettings } from '../harness/settings.js';
import type { CombinedReport } from './rounds.js';

export interface BenchRun {
  readonly startedAt: string;
  finishedAt: string;
  readonly commit: string;
  readonly machine: {
    readonly cpuModel: string;
    readonly cores: number;
    readonly memoryGiB: number;
    readonly node: string;
    readonly nodeFlags: string;
    readonly platform: string;
    readonly uptimeBefore: string;
    uptimeAfter: string;
  };
  readonly settings: BenchSettings;
  /** Said in the report as it is: the conditions no command shows (BENCH_NOTE). */
  readonly note?: string;
  readonly contenders: CombinedReport[];
}

export function machineLine(run: BenchRun): string {
  const machine = run.machine;
  return `${machine.cpuModel} × ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.platform}, node ${machine.node}`;
}

function figure(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function microseconds(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return 'n/a';
  return figure(value, value < 10 ? 2 : 1);
}

function latencyCell(report: ContenderResult): string {
  if ('notApplicable' in report.latency) return 'n/a';
  const latency = report.latency;
  const cell = `${figure(latency.p50Ms, 1)} / ${figure(latency.p99Ms, 1)} / ${figure(latency.p999Ms, 1)} at ${figure(latency.offeredPerSecond)}/s`;
  return latency.unanswered > 0 || latency.failures > 0 ? `${cell}, ${latency.unanswered} unanswered, ${latency.failures} failed` : cell;
}

function batchCell(report: ContenderResult): string {
  if (report.batch === null) return 'n/a';
  const batch = report.batch;
  const bound = batch.boundEvents === null ? '' : `, bound ${figure(batch.boundEvents)}`;
  const spread = batch.p50Events === null ? '' : ` (p50 ${figure(batch.p50Events)}, max ${figure(batch.maxEvents)})`;
  return `${figure(batch.meanEvents)}${spread}${bound}`;
}

function cpuCell(report: ContenderResult): string {
  const cpu = report.cpu;
  const server = cpu.serverLabel === null ? '' : ` (${cpu.processLabel} ${microseconds(cpu.processUsPerOrder)} + ${cpu.serverLabel} ${microseconds(cpu.serverUsPerOrder)})`;
  return `${microseconds(cpu.totalUsPerOrder)}${server}`;
}

/** The comparison table, one row per contender; a skipped contender says why. */
export function renderTable(contenders: readonly ContenderReport[]): string {
  const lines = [
    '| Contender | orders/s (max, closed loop) | CPU µs per order | ack latency p50 / p99 / p999 ms (open loop) | events per batch | lost acks | oversold |',
    '| --- | ---: | ---: | --- | --- | ---: | ---: |',
  ];
  for (const report of contenders) {
    if (isSkipped(report)) {
      lines.push(`| ${report.title} | skipped: ${report.skipped} | | | | | |`);
      continue;
    }
    lines.push(
      `| ${report.title} | ${figure(report.ordersPerSecond)} | ${cpuCell(report)} | ${latencyCell(report)} | ${batchCell(report)} | ` +
        `${figure(report.check.lostAcknowledgements)} | ${figure(report.check.oversold)} |`,
    );
  }
  return lines.join('\n');
}

function find(run: BenchRun, name: string): ContenderResult | undefined {
  const report = run.contenders.find((candidate) => candidate.name === name);
  return report === undefined || isSkipped(report) ? undefined : report;
}

function bestBaseline(run: BenchRun): ContenderResult | undefined {
  return run.contenders
    .filter((report): report is ContenderResult => !isSkipped(report) && report.name.startsWith('postgres-'))
    .reduce<ContenderResult | undefined>((best, report) => (best === undefined || report.ordersPerSecond > best.ordersPerSecond ? report : best), undefined);
}

function p99(report: ContenderResult | undefined): number | null {
  return report === undefined || 'notApplicable' in report.latency ? null : report.latency.p99Ms;
}

const rounded = (value: number | null | undefined, digits = 0): number | null =>
  value === null || value === undefined || !Number.isFinite(value) ? null : Number(value.toFixed(digits));

/** The last line the run prints: the figures issue 10 names, null where a contender did not run. */
export function summaryLine(run: BenchRun): Record<string, unknown> {
  const engine = find(run, 'engine');
  const ws = find(run, 'engine-ws');
  const redisAlways = find(run, 'redis-always');
  const decider = find(run, 'decider');
  const baseline = bestBaseline(run);
  const measured = run.contenders.filter((report): report is ContenderResult => !isSkipped(report));
  return {
    ordersPerSecond: rounded(engine?.ordersPerSecond),
    cpuUsPerOrder: rounded(engine?.cpu.totalUsPerOrder, 2),
    p99Ms: rounded(p99(engine), 2),
    wsOrdersPerSecond: rounded(ws?.ordersPerSecond),
    wsServerCpuUsPerOrder: rounded(ws?.cpu.totalUsPerOrder, 2),
    wsP99Ms: rounded(p99(ws), 2),
    redisAlwaysOrdersPerSecond: rounded(redisAlways?.ordersPerSecond),
    redisMemoryOrdersPerSecond: rounded(find(run, 'redis-memory')?.ordersPerSecond),
    deciderOrdersPerSecond: rounded(decider?.ordersPerSecond),
    baselineOrdersPerSecond: rounded(baseline?.ordersPerSecond),
    baselineClients: baseline?.conditions.clients ?? null,
    floorOrdersPerSecond: rounded(find(run, 'floor')?.ordersPerSecond),
    lostAcknowledgements: measured.reduce((sum, report) => sum + report.check.lostAcknowledgements, 0),
    oversold: measured.reduce((sum, report) => sum + report.check.oversold, 0),
    skipped: run.contenders.filter(isSkipped).map((report) => report.name),
    cores: run.machine.cores,
    quick: run.settings.quick,
  };
}

interface Goal {
  readonly goal: string;
  readonly value: number | null;
  readonly met: boolean | null;
}

/** Issue 10's goals, each against this run's figures; null where a figure is missing. */
export function goals(run: BenchRun): Goal[] {
  const engine = find(run, 'engine');
  const ws = find(run, 'engine-ws');
  const redisAlways = find(run, 'redis-always');
  const decider = find(run, 'decider');
  const check = (value: number | null | undefined, met: (value: number) => boolean): { value: number | null; met: boolean | null } =>
    value === null || value === undefined || !Number.isFinite(value) ? { value: null, met: null } : { value, met: met(value) };
  const ratio = (left: number | undefined, right: number | undefined): number | null =>
    left === undefined || right === undefined || right === 0 ? null : left / right;
  return [
    { goal: 'CPU per durable order in-process ≤ 5 µs (node + PostgreSQL)', ...check(engine?.cpu.totalUsPerOrder, (value) => value <= 5) },
    { goal: 'server CPU per order over WebSocket ≤ 10 µs (server + PostgreSQL)', ...check(ws?.cpu.totalUsPerOrder, (value) => value <= 10) },
    { goal: 'in-process orders/s ≥ 4 × Redis + Lua with appendfsync always', ...check(ratio(engine?.ordersPerSecond, redisAlways?.ordersPerSecond), (value) => value >= 4) },
    { goal: "in-process orders/s ≥ 20% of the pure decider's", ...check(ratio(engine?.ordersPerSecond, decider?.ordersPerSecond), (value) => value >= 0.2) },
    { goal: 'p99 ack latency in-process ≤ 10 ms at half the maximum', ...check(p99(engine), (value) => value <= 10) },
    { goal: 'p99 ack latency over WebSocket ≤ 25 ms at half the maximum', ...check(p99(ws), (value) => value <= 25) },
  ];
}

function conditionsText(report: ContenderResult): string {
  return Object.entries(report.conditions)
    .map(([key, value]) => `${key} ${String(value)}`)
    .join('; ');
}

/** The spread over the rounds, where there were several: what a difference must exceed to be real. */
function noiseSection(run: BenchRun): string[] {
  const spread = run.contenders.filter((report) => report.spread !== undefined);
  if (spread.length === 0) return [];
  const percent = (min: number, max: number, middle: number): string => `±${figure(((max - min) / 2 / middle) * 100)}%`;
  return [
    `## Noise: ${run.settings.rounds} rounds, alternated`,
    '',
    'The table shows each contender\'s median round. A difference is real only where it is larger than these spreads.',
    '',
    '| contender | rounds | orders/s, min – max | CPU µs per order, min – max |',
    '| --- | ---: | --- | --- |',
    ...spread.map((report) => {
      const { rounds, ordersPerSecond, totalUsPerOrder } = report.spread!;
      const median = isSkipped(report) ? Number.NaN : report.ordersPerSecond;
      const medianCpu = isSkipped(report) ? Number.NaN : report.cpu.totalUsPerOrder;
      return (
        `| ${report.title} | ${rounds} | ${figure(ordersPerSecond.min)} – ${figure(ordersPerSecond.max)} (${percent(ordersPerSecond.min, ordersPerSecond.max, median)}) | ` +
        `${microseconds(totalUsPerOrder.min)} – ${microseconds(totalUsPerOrder.max)} (${percent(totalUsPerOrder.min, totalUsPerOrder.max, medianCpu)}) |`
      );
    }),
    '',
  ];
}

export function renderMarkdown(run: BenchRun, chartFile: string): string {
  const lines = [
    `# npm run bench — ${run.startedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Machine: ${machineLine(run)}. Commit ${run.commit}. Node contenders run with \`${run.machine.nodeFlags || '(no flags)'}\`, the flags of \`npm start\`.`,
    '',
    `Load on the machine: before the run \`${run.machine.uptimeBefore}\`; after it \`${run.machine.uptimeAfter}\`.`,
    ...(run.note === undefined ? [] : ['', `**${run.note}**`]),
    ...(run.settings.quick ? ['', '**A smoke run (BENCH_QUICK=1): one-second windows and small loads; do not compare its figures.**'] : []),
    '',
    `Windows: ${run.settings.warmupSeconds} s warm-up, then ${run.settings.seconds} s measured at the maximum (closed loop); ` +
      `then ${run.settings.latencySeconds} s at a fixed offered load of half that maximum (open loop: requests sent on a schedule, ` +
      `latency from each request's scheduled time, so a stall is charged for every request it delays). ` +
      `Then every contender sells out an item of ${run.settings.sellOutStock.toLocaleString('en-US')} units, and the acknowledged ` +
      'orders of all three phases are checked against what its store holds.',
    '',
    renderTable(run.contenders),
    '',
    `![orders/s and CPU µs per order per contender](${chartFile})`,
    '',
    'CPU µs per order is the CPU of the contender\'s process plus its store\'s server (the PostgreSQL postmaster and every ' +
      'process under it, or redis-server), read from /proc over the measured window, divided by the orders acknowledged in ' +
      'it. It moves far less between machines than orders/s does. Compare figures only within one run.',
    '',
    ...noiseSection(run),
    "## Issue 10's goals, against this run",
    '',
    '| goal | this run | met |',
    '| --- | ---: | --- |',
    ...goals(run).map((goal) => `| ${goal.goal} | ${goal.value === null ? 'n/a' : figure(goal.value, 2)} | ${goal.met === null ? 'n/a' : goal.met ? 'yes' : 'no'} |`),
    '',
    '## Conditions and checks, per contender',
    '',
  ];
  for (const report of run.contenders) {
    if (isSkipped(report)) {
      lines.push(`- **${report.title}**: skipped. ${report.skipped}`, '');
      continue;
    }
    const check = report.check;
    lines.push(
      `- **${report.title}** (\`${report.name}\`): ${conditionsText(report)}.`,
      `  CPU over the ${figure(report.windowSeconds, 1)} s window: ${report.cpu.processLabel} ${figure(report.cpu.processCores, 2)} cores` +
        (report.cpu.serverLabel === null ? '' : `, ${report.cpu.serverLabel} ${figure(report.cpu.serverCores, 2)} cores`) +
        '.',
      `  Check: ${check.method}. Acknowledged ${figure(check.acknowledged)}, stored ${figure(check.stored)}, ` +
        `lost acknowledgements ${figure(check.lostAcknowledgements)}; ` +
        (check.sellOutStock === 0
          ? 'no sell-out.'
          : `sell-out of ${figure(check.sellOutStock)} units: ${figure(check.sellOutSold)} stored as sold, oversold ${figure(check.oversold)}` +
            (check.sellOutSold < check.sellOutStock ? ' (NOT sold out: the race for the last units did not happen)' : '') +
            '.'),
      ...report.notes.map((note) => `  Note: ${note}`),
      '',
    );
  }
  lines.push('Reproduce: `npm run bench` (settings in `bench/harness/settings.ts`; `BENCH_QUICK=1` for a smoke run).', '');
  return lines.join('\n');
}
