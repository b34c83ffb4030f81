/**
 * The pure parts of `npm run bench`: /proc parsing and process-tree CPU, the open-loop schedule,
 * percentiles, the loops against an in-memory store, the RESP codec, the per-order arithmetic,
 * the settings, and the Markdown, SVG and summary rendering. Speed is measured in bench/, never
 * asserted here.
 */
import { describe, expect, it } from 'vitest';
import { decodeReplies, encodeCommand } from '../bench/contenders/respConnection.js';
import { parseProcessStat, parseThreadTicks, treeTicks, type ProcessTimes } from '../bench/harness/cpu.js';
import { closedLoop, dueTimeMs, openLoop, quantile, requestsDue, sellOut, type Attempt } from '../bench/harness/loops.js';
import { batchFigures, countMissing, cpuFigures, halfOf, loadNotes, type ContenderReport, type ContenderResult } from '../bench/harness/result.js';
import { readSettings } from '../bench/harness/settings.js';
import { logBarLength, renderChart } from '../bench/report/chart.js';
import { goals, renderMarkdown, renderTable, summaryLine, type BenchRun } from '../bench/report/markdown.js';
import { combineRounds } from '../bench/report/rounds.js';

describe('CPU accounting from /proc', () => {
  it('reads a stat line whose command holds spaces and parentheses, with reaped children', () => {
    const line = '4242 (postgres: (bench) idle) S 4200 4242 4242 0 -1 4194560 90 0 0 0 150 30 7 3 20 0 1 0 1000 0 0';
    expect(parseProcessStat(line)).toEqual({ pid: 4242, command: 'postgres: (bench) idle', parentPid: 4200, ticks: 150 + 30 + 7 + 3 });
  });

  it("reads a thread's own ticks, without the process's reaped children", () => {
    const line = '4243 (V8 DefaultWorke) S 4200 4242 4242 0 -1 4194560 90 0 0 0 150 30 7 3 20 0 1 0 1000 0 0';
    expect(parseThreadTicks(line)).toBe(150 + 30);
  });

  it('sums a process and every live process below it, and nothing beside it', () => {
    const times = (pid: number, parentPid: number, ticks: number): [number, ProcessTimes] => [pid, { pid, command: 'x', parentPid, ticks }];
    const table = new Map([times(1, 0, 1000), times(10, 1, 5), times(11, 10, 7), times(12, 10, 11), times(13, 11, 13), times(20, 1, 100)]);
    expect(treeTicks(table, 10)).toBe(5 + 7 + 11 + 13);
    expect(treeTicks(table, 12)).toBe(11);
    expect(treeTicks(table, 99)).toBe(0);
  });
});

describe('the open-loop schedule', () => {
  it.each([
    [0, 1000, 1],
    [0.999, 1000, 1],
    [1, 1000, 2],
    [1000, 1000, 1001],
    [-5, 1000, 0],
    [1000, 3, 4],
  ])('after %f ms at %i/s, %i requests are due', (elapsedMs, rate, due) => {
    expect(requestsDue(elapsedMs, rate)).toBe(due);
  });

  it('has request i due at its own due time, and not before', () => {
    for (const rate of [7, 1000, 33_333]) {
      for (let index = 0; index < 500; index++) {
        expect(requestsDue(dueTimeMs(index, rate), rate)).toBeGreaterThanOrEqual(index + 1);
        expect(requestsDue(dueTimeMs(index, rate) - 1e-6, rate)).toBeLessThanOrEqual(index);
      }
    }
  });

  it('charges a stall to every request due during it: latency runs from the due time, not the send', async () => {
    // A store that answers nothing for its first 100 ms, then everything at once.
    const opened = performance.now() + 100;
    const result = await openLoop({
      ratePerSecond: 1000,
      seconds: 0.1,
      placeOrder: () =>
        new Promise<Attempt>((resolve) => setTimeout(() => resolve({ kind: 'order', orderId: 'x' }), Math.max(0, opened - performance.now()))),
    });
    expect(result.sent).toBe(100);
    expect(result.unanswered).toBe(0);
    // The first request waited the whole stall; the median about half of it.
    expect(quantile(result.latenciesMs, 1)).toBeGreaterThanOrEqual(90);
    expect(quantile(result.latenciesMs, 0.5)).toBeGreaterThan(25);
    expect(quantile(result.latenciesMs, 0.5)).toBeLessThan(90);
  });
});

describe('percentiles', () => {
  it('takes the value at the quantile of an ascending array, NaN for none', () => {
    const values = Array.from({ length: 1000 }, (_, index) => index + 1);
    expect(quantile(values, 0.5)).toBe(501);
    expect(quantile(values, 0.99)).toBe(991);
    expect(quantile(values, 0.999)).toBe(1000);
    expect(quantile([3], 0.999)).toBe(3);
    expect(quantile([], 0.5)).toBeNaN();
  });
});

/** An in-memory store with a stock, that never oversells, and can be told to oversell. */
function store(stock: number, oversellBy = 0) {
  let available = stock;
  let next = 1;
  const orders = new Set<string>();
  return {
    orders,
    placeOrder: async (): Promise<Attempt> => {
      await Promise.resolve();
      if (available + oversellBy <= 0) return { kind: 'refused', reason: 'sold_out' };
      available--;
      const orderId = String(next++);
      orders.add(orderId);
      return { kind: 'order', orderId };
    },
  };
}

describe('the loops against a store', () => {
  it('sells out exactly the stock, each buyer stopping at its first refusal', async () => {
    const shop = store(100);
    const outcome = await sellOut(shop.placeOrder, 10);
    expect(outcome.acknowledged).toHaveLength(100);
    expect(outcome.refused).toEqual({ sold_out: 10 });
    expect(countMissing(outcome.acknowledged, shop.orders)).toBe(0);
  });

  it('lets the check see an oversell and a lost acknowledgement', async () => {
    const shop = store(100, 5);
    const outcome = await sellOut(shop.placeOrder, 10);
    expect(outcome.acknowledged.length - 100).toBe(5);
    shop.orders.delete(outcome.acknowledged[0]!);
    expect(countMissing(outcome.acknowledged, shop.orders)).toBe(1);
  });

  it('counts failures apart from answers in a closed loop', async () => {
    let calls = 0;
    const result = await closedLoop({
      concurrency: 2,
      warmupSeconds: 0,
      seconds: 0.05,
      placeOrder: async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        if (++calls % 10 === 0) throw new Error('connection lost');
        return { kind: 'order', orderId: String(calls) };
      },
    });
    expect(result.failures).toBeGreaterThan(0);
    expect(result.firstFailure).toContain('connection lost');
    expect(result.ordersInWindow).toBeGreaterThan(0);
    expect(result.cpu).toBeNull();
  });
});

describe('the RESP connection codec', () => {
  it('encodes a command as an array of bulk strings, counting bytes', () => {
    expect(encodeCommand(['EVALSHA', 'ab', 'é'])).toBe('*3\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$2\r\né\r\n');
  });

  it('decodes integer, simple and error replies, and keeps a partial one for the next chunk', () => {
    const first = decodeReplies(Buffer.from(':1\r\n:0\r\n-NOSCRIPT No matching script\r\n+OK\r\n:12'));
    expect(first.replies.slice(0, 2)).toEqual([1, 0]);
    expect(first.replies[2]).toBeInstanceOf(Error);
    expect(first.replies[3]).toBe(0);
    const second = decodeReplies(Buffer.concat([first.rest, Buffer.from('3\r\n')]));
    expect(second.replies).toEqual([123]);
    expect(second.rest).toHaveLength(0);
  });

  it('refuses a reply type it never asks for', () => {
    expect(() => decodeReplies(Buffer.from('$3\r\nabc\r\n'))).toThrow(/unexpected RESP reply/);
  });
});

describe('per-order figures', () => {
  it('divides each subject’s CPU over the window by the orders in it', () => {
    const figures = cpuFigures({ seconds: 2, cpuSeconds: { node: 1, postgres: 0.5 } }, 100_000, 'node', 'postgres');
    expect(figures).toEqual({
      processLabel: 'node',
      processUsPerOrder: 10,
      serverLabel: 'postgres',
      serverUsPerOrder: 5,
      totalUsPerOrder: 15,
      processCores: 0.5,
      serverCores: 0.25,
    });
    expect(cpuFigures({ seconds: 1, cpuSeconds: { node: 1 } }, 0, 'node', null).totalUsPerOrder).toBeNaN();
  });

  it('notes failures, and refusals only where nothing should refuse', () => {
    const clean = { acknowledged: [], refused: {}, failures: 0 };
    expect(loadNotes({ maximum: clean, latency: clean, sellOut: { ...clean, refused: { sold_out: 9 } } })).toEqual([]);
    expect(
      loadNotes({
        maximum: { ...clean, failures: 2, firstFailure: 'ECONNRESET' },
        latency: { ...clean, refused: { unavailable: 3 } },
        sellOut: { ...clean, refused: { sold_out: 9, limit_exceeded: 1 } },
      }),
    ).toEqual([
      'maximum: 2 attempts failed, the first with: ECONNRESET',
      'latency: refused where nothing should refuse: unavailable 3',
      'sellOut: refused where nothing should refuse: limit_exceeded 1',
    ]);
  });

  it('summarises batches and halves the maximum', () => {
    expect(batchFigures([3, 1, 2, 10], 10)).toEqual({ boundEvents: 10, meanEvents: 4, p50Events: 3, maxEvents: 10 });
    expect(batchFigures([], null)).toEqual({ boundEvents: null, meanEvents: 0, p50Events: null, maxEvents: null });
    expect(halfOf(40_001)).toBe(20_001);
    expect(halfOf(0)).toBe(1);
  });
});

describe('settings', () => {
  it('has a full and a quick default, and reads lists and subsets', () => {
    expect(readSettings({}).seconds).toBe(5);
    expect(readSettings({ BENCH_QUICK: '1' })).toMatchObject({ quick: true, seconds: 1, connections: 200 });
    const chosen = readSettings({ BENCH_BASELINE_CLIENTS: '8, 32', BENCH_CONTENDERS: 'engine,decider', BENCH_SECONDS: '9' });
    expect(chosen).toMatchObject({ baselineClients: [8, 32], contenders: ['engine', 'decider'], seconds: 9 });
  });

  it('names the variable that is wrong', () => {
    expect(() => readSettings({ BENCH_SECONDS: '0' })).toThrow(/BENCH_SECONDS/);
    expect(() => readSettings({ BENCH_IN_FLIGHT: '1,2' })).toThrow(/BENCH_IN_FLIGHT must be one/);
  });
});

function contender(name: string, ordersPerSecond: number, totalUsPerOrder: number, p99Ms: number | null): ContenderResult {
  return {
    name,
    title: `${name} & co`,
    ordersPerSecond,
    windowSeconds: 5,
    cpu: {
      processLabel: 'node',
      processUsPerOrder: totalUsPerOrder / 2,
      serverLabel: 'postgres',
      serverUsPerOrder: totalUsPerOrder / 2,
      totalUsPerOrder,
      processCores: 1,
      serverCores: 0.5,
    },
    latency:
      p99Ms === null
        ? { notApplicable: 'no acknowledgement' }
        : { offeredPerSecond: ordersPerSecond / 2, orders: 1000, p50Ms: 1, p99Ms, p999Ms: p99Ms * 2, maxMs: 50, unanswered: 0, failures: 0 },
    batch: null,
    check: { method: 'rows', acknowledged: 10, stored: 10, lostAcknowledgements: 0, oversold: 0, sellOutStock: 5, sellOutSold: 5 },
    conditions: { clients: 16, fsync: 'on' },
    notes: [],
  };
}

function benchRun(contenders: ContenderReport[]): BenchRun {
  return {
    startedAt: '2026-01-02T03:04:05.000Z',
    finishedAt: '2026-01-02T03:09:05.000Z',
    commit: 'abc1234',
    machine: { cpuModel: 'Test CPU', cores: 2, memoryGiB: 24, node: 'v20', nodeFlags: '--flag', platform: 'Linux', uptimeBefore: 'load average: 4.00', uptimeAfter: 'load average: 3.00' },
    settings: readSettings({}),
    note: 'Taken with other work on the machine.',
    contenders,
  };
}

describe('the report', () => {
  const run = benchRun([
    contender('decider', 1_000_000, 1, null),
    contender('engine', 250_000, 4, 8),
    contender('engine-ws', 100_000, 12, 30),
    contender('postgres-16', 1_500, 900, 9),
    contender('postgres-64', 900, 1_000, 70),
    contender('redis-always', 50_000, 26, 5),
    { name: 'redis-memory', title: 'Redis + Lua, no persistence', skipped: 'redis-server is not on PATH; install it' },
  ]);

  it('has one row per contender, a skipped one saying why', () => {
    const table = renderTable(run.contenders);
    expect(table.split('\n')).toHaveLength(2 + run.contenders.length);
    expect(table).toContain('| engine & co | 250,000 | 4.00 (node 2.00 + postgres 2.00) | 1.0 / 8.0 / 16.0 at 125,000/s |');
    expect(table).toContain('skipped: redis-server is not on PATH; install it');
  });

  it('ends with the figures issue 10 names', () => {
    expect(summaryLine(run)).toMatchObject({
      ordersPerSecond: 250_000,
      cpuUsPerOrder: 4,
      wsServerCpuUsPerOrder: 12,
      redisAlwaysOrdersPerSecond: 50_000,
      redisMemoryOrdersPerSecond: null,
      deciderOrdersPerSecond: 1_000_000,
      baselineOrdersPerSecond: 1_500,
      baselineClients: 16,
      lostAcknowledgements: 0,
      skipped: ['redis-memory'],
    });
  });

  it('sets the goals against the same run', () => {
    expect(goals(run).map((goal) => goal.met)).toEqual([true, false, true, true, true, false]);
    expect(goals(benchRun([])).every((goal) => goal.met === null)).toBe(true);
  });

  it('writes the Markdown with its conditions, the note, the chart and the goals', () => {
    const markdown = renderMarkdown(run, 'chart.svg');
    expect(markdown).toContain('Test CPU × 2 cores');
    expect(markdown).toContain('load average: 4.00');
    expect(markdown).toContain('**Taken with other work on the machine.**');
    expect(markdown).toContain('![orders/s and CPU µs per order per contender](chart.svg)');
    expect(markdown).toContain('| CPU per durable order in-process ≤ 5 µs (node + PostgreSQL) | 4.00 | yes |');
    expect(markdown).toContain('clients 16; fsync on');
  });

  it('draws two bars per measured contender, on log axes, with escaped labels', () => {
    const svg = renderChart(run.contenders);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<rect x=/g)).toHaveLength(2 * 6);
    expect(svg).toContain('engine &amp; co');
    expect(svg).toContain('(skipped)');
    expect(logBarLength(10, 1, 1000, 300)).toBeCloseTo(100);
    expect(logBarLength(1000, 1, 1000, 300)).toBeCloseTo(300);
    expect(logBarLength(0, 1, 1000, 300)).toBe(0);
  });
});

describe('rounds', () => {
  it('reports the median round, the spread of all, and every round\'s losses', () => {
    const lossy = { ...contender('engine', 300, 5, 8) };
    const rounds = [contender('engine', 100, 3, 8), { ...lossy, check: { ...lossy.check, lostAcknowledgements: 2 } }, contender('engine', 200, 4, 8)];
    const combined = combineRounds(rounds);
    expect(combined).toMatchObject({ ordersPerSecond: 200, spread: { rounds: 3, ordersPerSecond: { min: 100, max: 300 }, totalUsPerOrder: { min: 3, max: 5 } } });
    expect(!('skipped' in combined) && combined.check.lostAcknowledgements).toBe(2);
    const markdown = renderMarkdown({ ...benchRun([combined]), settings: { ...readSettings({}), rounds: 3 } }, 'chart.svg');
    expect(markdown).toContain('| engine & co | 3 | 100 – 300 (±50%) | 3.00 – 5.00 (±25%) |');
  });

  it('keeps a failed round as a note, and a contender that never ran as skipped', () => {
    const failed = { name: 'engine', title: 'Engine', skipped: 'failed: out of memory' };
    expect(combineRounds([failed, contender('engine', 100, 3, 8)])).toMatchObject({ notes: ['one round did not count: failed: out of memory'] });
    expect(combineRounds([failed, failed])).toEqual(failed);
    expect(combineRounds([contender('engine', 100, 3, 8)])).not.toHaveProperty('spread');
  });
});
