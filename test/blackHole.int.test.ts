/**
 * A database connection that is black-holed: packets dropped, nothing closed, as in a network
 * partition. Every wait towards PostgreSQL is bounded, so requests get a truthful answer within
 * a few seconds, and service comes back without a restart once packets flow again. The test
 * prints the two figures it measures: the time to the first truthful reply after the partition,
 * and the time to the first order after it heals.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEngine } from '../src/engine.js';
import { createPool } from '../src/persistence/pools.js';
import { TcpProxy } from './e2e/tcpProxy.js';
import { judge } from './support/replayJudge.js';
import { storedFigures, storedOrderIds } from './support/storage.js';
import { createTestDatabase, type TestDatabase } from './support/testDatabase.js';

let database: TestDatabase;
let admin: pg.Pool;
let proxy: TcpProxy;

beforeAll(async () => {
  database = await createTestDatabase('black_hole');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
  const target = new URL(database.url);
  proxy = await TcpProxy.start(target.hostname, Number(target.port));
});

afterAll(async () => {
  await proxy?.close();
  await admin?.end();
  await database?.drop();
});

describe('a black-holed database connection', () => {
  it('gets requests a truthful answer within seconds, and serves again without a restart once it heals', async () => {
    const engine = await createEngine({ databaseUrl: proxy.route(database.url) });
    const itemId = '90';
    expect((await engine.createItem({ id: itemId, name: 'Radio', sellerId: '4', stock: 1_000_000 })).ok).toBe(true);

    interface Answer {
      readonly sentAt: number;
      readonly answeredAt: number;
      readonly outcome: string;
    }
    const answers: Answer[] = [];
    const acknowledged: string[] = [];
    let running = true;
    let nextUser = 1;
    const buyer = async (): Promise<void> => {
      while (running) {
        const sentAt = performance.now();
        const result = await engine.buy({ userId: String(nextUser++) }, { itemId, quantity: 1 });
        answers.push({ sentAt, answeredAt: performance.now(), outcome: result.ok ? 'ok' : result.reason });
        if (result.ok) acknowledged.push(result.orderId);
        await new Promise((resolve) => setTimeout(resolve, result.ok ? 1 : 20));
      }
    };
    const buyers = Array.from({ length: 20 }, buyer);
    // Buyers whose request is in a flush in doubt wait for its truth, so new requests come from
    // a prober that sends one every 100 ms whatever became of the ones before.
    const probes: Promise<void>[] = [];
    const prober = setInterval(() => {
      const sentAt = performance.now();
      probes.push(
        engine.buy({ userId: String(nextUser++) }, { itemId, quantity: 1 }).then((result) => {
          answers.push({ sentAt, answeredAt: performance.now(), outcome: result.ok ? 'ok' : result.reason });
          if (result.ok) acknowledged.push(result.orderId);
        }),
      );
    }, 100);
    await vi.waitFor(() => expect(acknowledged.length).toBeGreaterThan(200), { timeout: 10_000 });

    const partitionedAt = performance.now();
    proxy.blackHole();
    // A request sent during the partition gets a truthful answer (here: unavailable, nothing changed).
    await vi.waitFor(
      () => expect(answers.some((answer) => answer.sentAt > partitionedAt && answer.outcome === 'unavailable')).toBe(true),
      { timeout: 20_000, interval: 50 },
    );
    const firstTruthfulReply = answers.find((answer) => answer.sentAt > partitionedAt && answer.outcome === 'unavailable')!;
    const firstTruthfulReplyMs = firstTruthfulReply.answeredAt - partitionedAt;
    // Keep the partition a while, so every wait in the engine has had to give up at least once.
    await new Promise((resolve) => setTimeout(resolve, 3_000));

    const healedAt = performance.now();
    proxy.restore();
    await vi.waitFor(
      () => expect(answers.some((answer) => answer.sentAt > healedAt && answer.outcome === 'ok')).toBe(true),
      { timeout: 30_000, interval: 50 },
    );
    const firstOrderAfter = answers.find((answer) => answer.sentAt > healedAt && answer.outcome === 'ok')!;
    const recoveryMs = firstOrderAfter.answeredAt - healedAt;
    running = false;
    clearInterval(prober);
    await Promise.all([...buyers, ...probes]);
    console.log(
      `black hole: first truthful reply ${Math.round(firstTruthfulReplyMs)} ms after the partition; ` +
        `first order ${Math.round(recoveryMs)} ms after it healed; ` +
        `longest wait for an answer ${Math.round(Math.max(...answers.map((answer) => answer.answeredAt - answer.sentAt)))} ms; ` +
        `answers ${JSON.stringify(answers.reduce<Record<string, number>>((counts, answer) => ({ ...counts, [answer.outcome]: (counts[answer.outcome] ?? 0) + 1 }), {}))}`,
    );
    expect(firstTruthfulReplyMs).toBeLessThan(10_000);
    expect(recoveryMs).toBeLessThan(15_000);

    // Every answer was the truth: exactly the acknowledged orders are stored, no more, no fewer.
    await engine.close();
    expect((await storedOrderIds(admin, itemId)).sort()).toEqual([...acknowledged].sort());
    expect(await storedFigures(admin, itemId)).toMatchObject({ sold: acknowledged.length, available: 1_000_000 - acknowledged.length });
    // The fault suite's judge: the journal verifies, every order projected exactly once.
    const verdict = await judge(database.url);
    expect(verdict.violations).toEqual([]);
    expect(verdict.code).toBe(0);
  });
});
