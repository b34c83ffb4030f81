/**
 * Fault suite: the server killed with SIGKILL at a random moment under WebSocket load, round
 * after round, restarted on the same databases each time. The judge is `seckill replay
 * --verify`, run as a user runs it; every order any buyer was told about must be stored, and
 * nothing oversold.
 *
 * SECKILL_FAULT_ROUNDS sets the rounds (3 in `npm test`; `npm run faults` runs 50) and
 * SECKILL_FAULT_SEED the random moments. The test prints its figures.
 */
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/persistence/pools.js';
import { TestClient, type Message } from '../e2e/client.js';
import { adminToken, jwtSecret } from '../e2e/harness.js';
import { MainProcess } from '../e2e/mainProcess.js';
import { judge } from '../support/replayJudge.js';
import { storedOrderIds } from '../support/storage.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';

const rounds = Number(process.env.SECKILL_FAULT_ROUNDS ?? 3);
let seed = Number(process.env.SECKILL_FAULT_SEED ?? 20261122);
/** A small seeded generator (mulberry32), so a failing round can be run again. */
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let value = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
  return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
}

let database: TestDatabase;
let admin: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('fault_kill');
  admin = createPool({ connectionString: database.url, connectionsMax: 2 });
});

afterAll(async () => {
  await admin?.end();
  await database?.drop();
});

function token(userId: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).sign(new TextEncoder().encode(jwtSecret));
}

const unlimited = String(1_000_000);

describe('the server killed with SIGKILL under WebSocket load', () => {
  it(`loses no acknowledged order and oversells nothing, over ${rounds} rounds, as seckill replay --verify judges`, async () => {
    const itemId = '700';
    // Enough for most rounds, not for all: the last ones sell out, under the same faults.
    const stock = 3_000 * rounds;
    const environment = {
      PORT: '0',
      DATABASE_URL: database.url,
      SECKILL_JWT_SECRET: jwtSecret,
      SECKILL_ADMIN_TOKEN: adminToken,
      SECKILL_USER_REQUESTS_PER_SECOND: unlimited,
      SECKILL_USER_BURST_REQUESTS: unlimited,
      SECKILL_CONNECTION_REQUESTS_PER_SECOND: unlimited,
      SECKILL_CONNECTION_BURST_REQUESTS: unlimited,
    };
    const acknowledged = new Set<string>();
    const refusals: Record<string, number> = {};
    for (let round = 0; round < rounds; round++) {
      const main = MainProcess.start(environment);
      const port = await main.listening();
      if (round === 0) {
        const created = await fetch(`http://127.0.0.1:${port}/admin/items`, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ id: itemId, name: 'Kettle', sellerId: '5', stock, perUserLimit: stock }),
        });
        expect(created.status).toBe(201);
      }
      const buyers = await Promise.all(
        Array.from({ length: 50 }, async (_, index) => TestClient.connect(`ws://127.0.0.1:${port}/ws?token=${await token(String(10_000 + round * 100 + index))}`)),
      );
      const keepBuying = (buyer: TestClient): void => {
        void buyer.request({ type: 'buy', item: itemId, qty: 1 }).then(
          (reply: Message) => {
            if (reply.type === 'order') {
              acknowledged.add(reply.orderId as string);
              keepBuying(buyer);
            } else {
              const reason = String(reply.reason);
              refusals[reason] = (refusals[reason] ?? 0) + 1;
              if (reason !== 'sold_out') keepBuying(buyer);
            }
          },
          () => undefined,
        );
      };
      for (const buyer of buyers) for (let inFlight = 0; inFlight < 4; inFlight++) keepBuying(buyer);
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.floor(random() * 900)));
      main.child.kill('SIGKILL');
      expect((await main.exited).signal).toBe('SIGKILL');
      await Promise.all(buyers.map((buyer) => buyer.closed));
    }

    const verdict = await judge(database.url);
    const stored = new Set(await storedOrderIds(admin, itemId));
    const lost = [...acknowledged].filter((orderId) => !stored.has(orderId));
    const totals = verdict.itemTotals.find((item) => item.itemId === itemId);
    const oversold = Math.max(0, (totals?.sold ?? 0) + (totals?.reserved ?? 0) - (totals?.stock ?? 0));
    console.log(
      `fault suite, kill -9: ${rounds} rounds, ${acknowledged.size} orders acknowledged, ${stored.size} stored, lost ${lost.length}, ` +
        `oversold ${oversold}, refusals ${JSON.stringify(refusals)}, replay --verify exit ${verdict.code} over ${verdict.events} events`,
    );
    expect(verdict.violations).toEqual([]);
    expect(verdict.code).toBe(0);
    expect(lost).toEqual([]);
    expect(oversold).toBe(0);
    expect(acknowledged.size).toBeGreaterThan(rounds * 100);
    // Refusals are only the truthful ones.
    expect(Object.keys(refusals).filter((reason) => reason !== 'sold_out' && reason !== 'unavailable')).toEqual([]);
  }, 60_000 + rounds * 10_000);
});
