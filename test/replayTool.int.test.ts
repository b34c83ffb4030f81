/**
 * `seckill replay` as its users run it, against a real PostgreSQL: the report and `--verify`
 * after a sale with every kind of event, `--until`, export and import into other databases,
 * reconciliation, violations found where they happened, and bad input refused in one line.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedClock } from '../src/clock.js';
import { createEngine } from '../src/engine.js';
import { encodeEvents } from '../src/persistence/journalBatch.js';
import { createPool } from '../src/persistence/pools.js';
import { runReplay, type ReplayRun } from './support/replayJudge.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

/** `seckill replay …` on the databases of `databaseUrl`, as a user runs it. */
function replay(databaseUrl: string, ...args: string[]): Promise<ReplayRun> {
  return runReplay(databaseUrl, args, { SECKILL_LOG_LEVEL: 'warn' });
}

let source: TestDatabase;
let target: TestDatabase;
let admin: pg.Pool;
let directory: string;
const startMs = Date.UTC(2030, 0, 1);

beforeAll(async () => {
  source = await createTestDatabase('replay_tool');
  target = await createTestDatabase('replay_tool_import');
  admin = createPool({ connectionString: source.url, connectionsMax: 2 });
  directory = await mkdtemp(path.join(os.tmpdir(), 'seckill-replay-'));

  // A sale with every kind of event: orders, reservations confirmed, cancelled and expired, a
  // restock, an order cancelled, transfers between slices.
  const clock = new SimulatedClock(startMs);
  const engine = await createEngine({ databaseUrl: source.url, clock });
  await engine.createItem({ id: '81', name: 'Lamp', sellerId: '6', stock: 40, slices: 2, perUserLimit: 2, reserveTtlMs: 60_000 });
  await engine.createItem({ id: '82', name: 'Desk', sellerId: '6', stock: 10, perUserLimit: 2 });
  for (let user = 1; user <= 30; user++) expect((await engine.buy({ userId: String(user) }, { itemId: '81', quantity: 1 })).ok).toBe(true);
  const kept = await engine.reserve({ userId: '100' }, { itemId: '82', quantity: 1 });
  const dropped = await engine.reserve({ userId: '101' }, { itemId: '82', quantity: 1 });
  expect((await engine.reserve({ userId: '102' }, { itemId: '82', quantity: 2 })).ok).toBe(true);
  if (!kept.ok || !dropped.ok) throw new Error('reservations failed');
  expect((await engine.confirm({ userId: '100' }, kept.token)).ok).toBe(true);
  expect((await engine.cancel({ userId: '101' }, dropped.token)).ok).toBe(true);
  clock.advance(61_000);
  await engine.idle();
  await engine.restock('82', 5);
  const order = await engine.buy({ userId: '103' }, { itemId: '82', quantity: 1 });
  if (!order.ok) throw new Error('the order failed');
  expect((await engine.cancelOrder(order.orderId)).ok).toBe(true);
  await engine.idle();
  await engine.close();
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await source?.drop();
  await target?.drop();
  await rm(directory, { recursive: true, force: true });
});

describe('seckill replay', () => {
  it('reports every item and slice, and --verify finds every invariant holding', async () => {
    const run = await replay(source.url, '--verify', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const outcome = JSON.parse(run.stdout);
    expect(outcome.violations).toEqual([]);
    expect(outcome.items).toBe(2);
    const lamp = outcome.itemTotals.find((totals: { itemId: string }) => totals.itemId === '81');
    expect(lamp).toMatchObject({ stock: 40, available: 10, reserved: 0, sold: 30, inTransfer: 0 });
    const desk = outcome.slices.find((slice: { itemId: string }) => slice.itemId === '82');
    expect(desk).toMatchObject({ stock: 15, sold: 1, reserved: 0, available: 14, expiredReservations: 1, cancelledReservations: 1, cancelledOrders: 1, openReservations: 0 });

    const people = await replay(source.url, '--verify');
    expect(people.code).toBe(0);
    expect(people.stdout).toContain('item 81: stock 40 = available 10 + reserved 0 + sold 30');
    expect(people.stdout).toContain('verified: every invariant holds');
  });

  it('--until shows the state as of a sequence and as of a moment', async () => {
    const bySequence = JSON.parse((await replay(source.url, '--until', '3', '--json')).stdout);
    const desk = bySequence.slices.find((slice: { itemId: string }) => slice.itemId === '82');
    // defined, then two reservations.
    expect(desk).toMatchObject({ events: 3, lastSequence: 3, reserved: 2, available: 8 });
    const beforeExpiry = JSON.parse((await replay(source.url, '--until', new Date(startMs + 30_000).toISOString(), '--json')).stdout);
    expect(beforeExpiry.slices.find((slice: { itemId: string }) => slice.itemId === '82')).toMatchObject({ reserved: 2, expiredReservations: 0 });
  });

  it('exports the journals as NDJSON and imports them into other databases, where they verify the same', async () => {
    const file = path.join(directory, 'sale.ndjson');
    const exported = await replay(source.url, 'export', file, '--json');
    expect(exported.code).toBe(0);
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.filter((line) => line.type === 'item')).toHaveLength(2);
    expect(lines.filter((line) => line.type === 'event').length).toBe(JSON.parse(exported.stdout).events);

    const fromFileRun = await replay(source.url, '--file', file, '--verify', '--json');
    expect({ code: fromFileRun.code, stderr: fromFileRun.stderr }).toEqual({ code: 0, stderr: '' });
    const fromFile = JSON.parse(fromFileRun.stdout);
    expect(fromFile.violations).toEqual([]);

    const imported = await replay(target.url, 'import', file);
    expect(imported.stderr).toBe('');
    expect(imported.code).toBe(0);
    const there = await replay(target.url, '--verify', '--json');
    expect({ code: there.code, stderr: there.stderr, violations: there.code === 0 ? [] : JSON.parse(there.stdout).violations }).toEqual({ code: 0, stderr: '', violations: [] });
    const original = JSON.parse((await replay(source.url, '--json')).stdout);
    expect(JSON.parse(there.stdout).itemTotals).toEqual(original.itemTotals);
    // A second import of the same items is refused: they are there.
    const again = await replay(target.url, 'import', file);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/item 8[12] is already in the databases/);
  });

  it('lists expired reservations and cancelled orders of an item over a time range', async () => {
    const run = await replay(source.url, 'reconcile', '--item', '82', '--json');
    expect(run.code).toBe(0);
    const reconciliation = JSON.parse(run.stdout);
    expect(reconciliation.expiredReservations).toHaveLength(1);
    expect(reconciliation.expiredReservations[0]).toMatchObject({ userId: '102', quantity: 2 });
    expect(reconciliation.cancelledReservations).toHaveLength(1);
    expect(reconciliation.cancelledOrders).toHaveLength(1);
    const before = JSON.parse((await replay(source.url, 'reconcile', '--item', '82', '--to', String(startMs + 1_000), '--json')).stdout);
    expect(before.expiredReservations).toEqual([]);
  });

  it('finds an oversell and a broken limit where they happened, and exits 1', async () => {
    const damaged = await createTestDatabase('replay_tool_damaged');
    try {
      const engine = await createEngine({ databaseUrl: damaged.url });
      await engine.createItem({ id: '91', name: 'Bell', sellerId: '6', stock: 2, perUserLimit: 1 });
      expect((await engine.buy({ userId: '1' }, { itemId: '91', quantity: 1 })).ok).toBe(true);
      await engine.close();
      // Behind the engine's back: two more orders, one by a buyer who already has one, written
      // as a batch row as the engine would; the second one takes a unit that is not there.
      const pool = createPool({ connectionString: damaged.url, connectionsMax: 1 });
      const { rows } = await pool.query<{ id: string }>(`SELECT id FROM item_inventory WHERE item_id = 91 AND parent_id IS NOT NULL`);
      const payload = encodeEvents([
        { sequence: 3, event: { kind: 'purchased', orderId: '9000000000001', userId: '1', quantity: 1, atMs: Date.now() } },
        { sequence: 4, event: { kind: 'purchased', orderId: '9000000000002', userId: '2', quantity: 1, atMs: Date.now() } },
      ]);
      await pool.query('INSERT INTO journal_batch (slice_id, first_sequence, last_sequence, events, payload) VALUES ($1, 3, 4, 2, $2)', [rows[0]!.id, payload]);
      await pool.end();
      const run = await replay(damaged.url, '--verify');
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 1, stderr: '' });
      expect(run.stdout).toMatch(/VIOLATION item 91 slice 0 sequence 3: per-user limit: expected user 1 holds at most 1, found 2/);
      expect(run.stdout).toMatch(/VIOLATION item 91 slice 0 sequence 4: no oversell/);
      expect(run.stdout).toContain('NOT verified');
    } finally {
      await damaged.drop();
    }
  });

  it('refuses bad input in one line, with the fix, and exit code 2', async () => {
    for (const args of [['--until', 'next tuesday'], ['--bogus'], ['reconcile'], ['export']]) {
      const run = await replay(source.url, ...args);
      expect(run.code).toBe(2);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(/^seckill replay: .*; fix: run `seckill replay --help`/);
    }
    const help = await replay(source.url, 'export', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: seckill replay export PATH/);
  });
});
