/**
 * What the engine tells an operator: a line for every administrative change (item created,
 * restocked, changed, users blocked and unblocked), and one when a storage outage is over.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine, type EngineOptions } from '../src/engine.js';
import { TcpProxy } from './e2e/tcpProxy.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let proxy: TcpProxy;
let engine: Engine;
const lines: { level: string; message: string; detail: unknown }[] = [];
const log: NonNullable<EngineOptions['log']> = (level, message, detail) => void lines.push({ level, message, detail });

beforeAll(async () => {
  database = await createTestDatabase('operator_log');
  const target = new URL(database.url);
  proxy = await TcpProxy.start(target.hostname, Number(target.port));
  engine = await createEngine({ databaseUrl: proxy.route(database.url), log });
});

afterAll(async () => {
  proxy?.restore();
  await engine?.close();
  await proxy?.close();
  await database?.drop();
});

function linesAfter(count: number): string[] {
  return lines.slice(count).filter(({ level }) => level === 'info').map(({ message }) => message);
}

describe('administrative changes in the log', () => {
  it('says what an item was created with, and what a restock added', async () => {
    const before = lines.length;
    const created = await engine.createItem({
      id: '42',
      name: 'Phone',
      sellerId: '7',
      stock: 100,
      perUserLimit: 2,
      startsAt: Date.UTC(2026, 0, 1),
      endsAt: Date.UTC(2030, 0, 1),
      reserveTtlMs: 30_000,
      slices: 2,
      challenge: 'arithmetic',
      eligibility: { minLevel: 2, tags: ['member'] },
    });
    expect(created.ok).toBe(true);
    expect(linesAfter(before)).toEqual([
      'item 42 created: "Phone" of seller 7, stock 100 over 2 slices, 2 per user, reservations held 30 s, ' +
        'challenge arithmetic, eligible: level >= 2, tags ["member"], on sale from 2026-01-01T00:00:00.000Z to 2030-01-01T00:00:00.000Z',
    ]);
    expect(lines.at(-1)?.detail).toMatchObject({ id: '42', reserveTtlMs: 30_000, slices: 2 });

    const restocked = lines.length;
    expect((await engine.restock('42', 50)).ok).toBe(true);
    expect(linesAfter(restocked)).toEqual(['item 42 restocked: 50 units added, stock now 150, 150 available']);
  });

  it('says what a change of window or limit changed', async () => {
    const before = lines.length;
    expect((await engine.amendItem('42', { perUserLimit: 3, endsAt: null })).ok).toBe(true);
    expect(linesAfter(before)).toEqual(['item 42 changed: limit 2 → 3 per user, end 2030-01-01T00:00:00.000Z → no end']);
  });

  it('says who was blocked and unblocked', async () => {
    const before = lines.length;
    await engine.block('1001');
    await engine.unblock('1001');
    expect(linesAfter(before)).toEqual(['user 1001 blocked from every sale', 'user 1001 unblocked']);
  });
});

describe('a storage outage in the log', () => {
  it('logs the failures while it lasts and one line when storage is back', async () => {
    await engine.createItem({ id: '43', name: 'Case', sellerId: '7', stock: 10, perUserLimit: 10 });
    proxy.cut();
    // Let the pools see their connections drop, so the flush fails to connect instead of
    // finding its connection gone mid-commit, which takes the journal 30 s to settle.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await engine.buy({ userId: '2001' }, { itemId: '43', quantity: 1 })).toMatchObject({ ok: false, reason: 'unavailable' });
    expect(lines.some(({ level, message }) => level === 'error' && /journal flush of \d+ events failed/.test(message))).toBe(true);
    expect(lines.some(({ message }) => message.startsWith('storage outage over'))).toBe(false);

    proxy.restore();
    const deadline = Date.now() + 20_000;
    for (;;) {
      const outcome = await engine.buy({ userId: '2001' }, { itemId: '43', quantity: 1 });
      if (outcome.ok) break;
      if (Date.now() > deadline) throw new Error('the engine did not recover');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const over = lines.filter(({ message }) => message.startsWith('storage outage over'));
    expect(over).toHaveLength(1);
    expect(over[0]).toMatchObject({
      level: 'info',
      message: expect.stringMatching(/^storage outage over: inventory database 0 commits again, after \d+\.\d s and \d+ failed journal flush(es)?$/),
    });
  });
});
