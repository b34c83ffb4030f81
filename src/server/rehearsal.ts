/**
 * A rehearsal of the flash-sale moment at start, before the server listens.
 *
 * V8 compiles a function to fast code only after it ran many times. On a server that has served
 * nothing yet, the first sale pays that compilation in the middle of its busiest second: measured
 * with `npm run bench:moment` (10,000 buyers on 10,000 connections, 2 cores, medians of 3 new
 * servers, 2026-12-02), the server spent 550 ms of CPU on its very first moment without the
 * rehearsal, and 290 ms with it.
 *
 * So the server first runs the moment itself, through the very code a sale runs: a second server
 * of this code, on a loopback port, over an engine of its own in temporary databases on the
 * same PostgreSQL (`seckill_rehearsal_…`, made at the start of the rehearsal and dropped at its
 * end, or at the next start if the process was killed during it), with real
 * WebSocket connections whose buyers all press `buy` at once on small items, and press again
 * once each has sold out (most of a real crowd is answered `sold_out` from memory); then buys
 * in-process on that engine, three per buyer, for what runs once per batch. A prelude of 100
 * buyers does all of it once in small first, so that the rehearsal's own end does not throw
 * away the code it compiled (`preludeBuyersMax`). Nothing of the
 * rehearsal is left in the real databases, and the real server opens its port only after it.
 *
 * Compiled code is fitted to the objects and functions it has seen, so what the real server
 * shares with the rehearsing one is made to match: buyers and tokens as varied as a real crowd's,
 * purchases shaped as the dispatcher's, one shape for item definitions (`itemDefinition`), and
 * no closure made per server or per engine on the path of a buy (`Admission`, the slice host's
 * `deliverAtOnce`). Each of these was found as a deoptimization in a new server's first moment
 * (`--trace-deopt`).
 *
 * SECKILL_REHEARSAL_BUYERS sets how many buyers rehearse (0 skips the rehearsal). A PostgreSQL
 * role that may not create databases cannot rehearse: the server then says so and starts cold.
 */
import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { pino } from 'pino';
import WebSocket from 'ws';
import type { EdgeLimits } from '../config.js';
import { createEngine, type Engine } from '../engine.js';
import type { EngineOptions } from '../engine/types.js';
import { Metrics } from '../metrics.js';
import { dropAbandonedDatabases, temporaryDatabases } from '../persistence/temporaryStorage.js';
import { startServer } from './lifecycle.js';

export interface RehearsalOptions {
  /** The real engine's inventory databases: the rehearsal's temporary databases go on the same servers. */
  readonly databaseUrls: readonly string[];
  /** How the real engine hosts its slices, so that the rehearsal runs the same code. */
  readonly engine: Pick<EngineOptions, 'shards' | 'defaultSlices' | 'flushEventsMax'>;
  readonly limits: EdgeLimits;
  /** Buyers on their own connections, each pressing `buy` once per round. */
  readonly buyers: number;
  /** Moments rehearsed, one after the other, each on its own item. */
  readonly rounds?: number;
}

/** What one pass of the rehearsal heard (`rehearsePass`). */
export interface PassReport {
  readonly buyers: number;
  readonly rounds: number;
  /** Replies per kind over every round: `order` and `sold_out` when all went as in a sale. */
  readonly replies: Record<string, number>;
  /** The same for the buys made in-process after the rounds (`rehearseEngine`). */
  readonly engineReplies: Record<string, number>;
}

export interface RehearsalReport extends PassReport {
  /** The prelude's own (see `preludeBuyersMax`): the same kinds of reply, from fewer buyers. */
  readonly prelude: PassReport;
  readonly durationMs: number;
}

/** Units on sale in each rehearsed moment, per buyer: half the buyers get an order, half hear `sold_out`. */
const unitsPerBuyer = 0.5;
const connectConcurrency = 64;
/** The rehearsal's databases: `seckill_rehearsal_<random>`, one per inventory server. */
const databasePrefix = 'seckill_rehearsal';
const replyWaitMs = 30_000;
/**
 * Orders the engine takes in-process after the rounds, per rehearsing buyer. What runs once per
 * batch rather than once per request (the journal's encoding, the order projection's plan) is
 * compiled by V8 only after many batches: measured with `--trace-opt`, the projection's plan
 * was compiled during the fourth moment of 1,000 orders after the rounds alone, for 80 to 100 ms
 * of CPU in the middle of that moment.
 */
const engineOrdersPerBuyer = 3;
const engineOrdersPerItem = 2_000;
/**
 * Buyers who come once the item sold out, per unit. A rehearsed crowd presses all at once, so
 * every one of its requests reaches the engine before the first commit makes "sold out" known
 * in memory: the refusal from memory that answers most of a real sale's crowd (its buyers
 * arrive over a few hundred milliseconds, while commits land) never ran. Measured with
 * `--trace-deopt`: a new server's first sale then threw away the code of the purchase path
 * ("insufficient type feedback for call", at the `sold_out` check of `Purchases.refusalOf`) and
 * compiled it again in the middle of that sale.
 */
const lateBuyers = 1;

/**
 * Buyers of the prelude: a whole rehearsal in small, on an engine and a server of its own that
 * then close, before the rehearsal proper. What happens only once in a program's life (the
 * first engine that closes, the first slice released, the first server and sockets closed)
 * changes objects V8's compiled code was fitted to, and V8 then throws that code away. Without
 * the prelude that happened when the rehearsal ended, to the very code it had compiled:
 * measured with `--trace-deopt` (2026-12-03), the purchase path's `route`, `buy`,
 * `refusalFromMemory`, `assertOpen` and the slice's `onFigures`, `wake` and `whenReleased` were
 * all marked for deoptimization ("code dependencies") as the rehearsal's engine closed, and the
 * real server's first sale compiled them again. After a prelude, the rehearsal's end throws
 * none of them away.
 */
const preludeBuyersMax = 100;
/** The prelude's items are numbered from here, apart from the rehearsal's on the same databases. */
const preludeFirstItemId = 1_000_000;

/**
 * The rehearsal's buyers look like a real crowd: user ids of every length an id has, and tokens
 * with and without `level`, `tags` and `exp`. V8 fits compiled code to the shapes and value
 * kinds it has seen; a rehearsal of only short ids and bare tokens left code that a real sale's
 * first buyers threw away ("wrong map", "not a Smi": `--trace-deopt`) and had compiled again.
 */
function rehearsalBuyer(index: number): { userId: string; claims: { level?: number; tags?: string[]; exp?: number } } {
  const digits = [1, 7, 12, 19][index % 4]!;
  const userId = digits === 1 ? String(index + 1) : `${1 + (index % 9)}${String(index).padStart(digits - 1, '0')}`;
  const claims: { level?: number; tags?: string[]; exp?: number } = {};
  if (index % 2 === 1) claims.level = 1 + (index % 5);
  if (index % 3 === 1) claims.tags = ['rehearsal'];
  if (index % 4 >= 2) claims.exp = Math.floor(Date.now() / 1_000) + 3_600;
  return { userId, claims };
}

/**
 * Buys in-process, twice as many buyers as units, then `lateBuyers` per unit, on items of their
 * own: the engine's half of a sale, many more times than a rehearsal's sockets can afford.
 */
async function rehearseEngine(engine: Engine, orders: number, firstItemId: number): Promise<Record<string, number>> {
  const replies: Record<string, number> = {};
  let buyerIndex = 0;
  for (let item = 1; orders > 0; item++) {
    const units = Math.min(orders, engineOrdersPerItem);
    orders -= units;
    const itemId = String(firstItemId + item);
    const created = await engine.createItem({ id: itemId, name: 'Rehearsal', sellerId: '1', stock: units });
    if (!created.ok) throw new Error(`rehearsal: creating its item failed: ${created.message}`);
    // Everyone at once, then the late crowd once the item sold out.
    const crowd = (size: number) =>
      Promise.all(
        Array.from({ length: size }, () => {
          const { userId, claims } = rehearsalBuyer(buyerIndex++);
          // Shaped as the server's own: a buyer as src/edge/auth.ts makes it, a purchase as the
          // dispatcher does, so that the code compiled here fits the server's objects.
          return engine.buy({ userId, level: claims.level, tags: claims.tags }, { itemId, quantity: 1, idempotencyKey: undefined });
        }),
      );
    const answers = await crowd(units * 2);
    const lateAnswers = await crowd(units * lateBuyers);
    for (const answer of [...answers, ...lateAnswers]) {
      const kind = answer.ok ? 'order' : answer.reason;
      replies[kind] = (replies[kind] ?? 0) + 1;
    }
  }
  return replies;
}

export async function rehearseSale(options: RehearsalOptions): Promise<RehearsalReport> {
  const started = performance.now();
  const rounds = options.rounds ?? 2;
  if (options.databaseUrls.length === 0) throw new Error('rehearsal: no database to make temporary databases on');
  // A server killed during its rehearsal left its databases behind: the next one drops them.
  await dropAbandonedDatabases(options.databaseUrls, databasePrefix);
  const databases = await temporaryDatabases(options.databaseUrls, databasePrefix);
  try {
    const preludeBuyers = Math.min(preludeBuyersMax, options.buyers);
    const prelude = await rehearsePass(options, databases.value, { buyers: preludeBuyers, rounds: 1, firstItemId: preludeFirstItemId });
    const rehearsal = await rehearsePass(options, databases.value, { buyers: options.buyers, rounds, firstItemId: 0 });
    return { ...rehearsal, prelude, durationMs: Math.round(performance.now() - started) };
  } finally {
    await databases.remove();
  }
}

interface Pass {
  readonly buyers: number;
  readonly rounds: number;
  /** The pass's items are numbered from here, apart from another pass's on the same databases. */
  readonly firstItemId: number;
}

/**
 * One whole rehearsal on an engine of its own over `databaseUrls`: its buyers connect, press
 * `buy` in `rounds` moments, the engine takes its in-process buys, and then the sockets, the
 * server and the engine close.
 */
async function rehearsePass(
  options: RehearsalOptions,
  databaseUrls: readonly string[],
  pass: Pass,
): Promise<PassReport> {
  const [primary, ...extra] = databaseUrls;
  const engine = await createEngine({ ...options.engine, databaseUrl: primary, extraInventoryDatabaseUrls: extra });
  try {
    const jwtSecret = randomBytes(32).toString('base64url');
    // V8 fits the fast code of a closure to the one instance that made it, while only one
    // instance has made that closure. The real server will be a further instance, so a first
    // server that serves nothing comes before the one that rehearses: the code compiled during
    // the rehearsal is then the code every instance shares.
    const serverOptions = {
      engine,
      jwtSecret,
      adminToken: randomBytes(24).toString('base64url'),
      host: '127.0.0.1',
      port: 0,
      limits: { ...options.limits, connectionsMax: Math.max(options.limits.connectionsMax, pass.buyers + 1) },
      logger: pino({ level: 'silent' }),
      metrics: new Metrics(),
    };
    await (await startServer(serverOptions)).close(0);
    const server = await startServer(serverOptions);
    const sockets: WebSocket[] = [];
    try {
      let next = 0;
      const connect = async (): Promise<void> => {
        while (next < pass.buyers) {
          const buyer = rehearsalBuyer(next++);
          const token = jwt.sign(buyer.claims, jwtSecret, { algorithm: 'HS256', subject: buyer.userId });
          sockets.push(await openSocket(`${server.wsUrl}?token=${token}`));
        }
      };
      await Promise.all(Array.from({ length: Math.min(connectConcurrency, pass.buyers) }, connect));
      const replies: Record<string, number> = {};
      for (let round = 1; round <= pass.rounds; round++) {
        const itemId = String(pass.firstItemId + round);
        const created = await engine.createItem({
          id: itemId,
          name: 'Rehearsal',
          sellerId: '1',
          stock: Math.max(1, Math.round(pass.buyers * unitsPerBuyer)),
        });
        if (!created.ok) throw new Error(`rehearsal: creating its item failed: ${created.message}`);
        // Half the buyers send idempotency keys, as the client library does by default, half
        // plain frames: the two take different paths (src/engine/purchases.ts).
        const answers = await Promise.all(sockets.map((socket, index) => buyOnce(socket, `${round}-${index}`, itemId, index % 2 === 0)));
        // The late crowd of a real sale: buyers who press after the item sold out are answered
        // from memory (see `lateBuyers`).
        const lateAnswers = await Promise.all(
          sockets.map((socket, index) => buyOnce(socket, `${round}-late-${index}`, itemId, index % 2 === 0)),
        );
        for (const answer of [...answers, ...lateAnswers]) replies[answer] = (replies[answer] ?? 0) + 1;
      }
      const engineReplies = await rehearseEngine(engine, pass.buyers * engineOrdersPerBuyer, pass.firstItemId + 1_000);
      return { buyers: pass.buyers, rounds: pass.rounds, replies, engineReplies };
    } finally {
      for (const socket of sockets) socket.terminate();
      await server.close(1_000);
    }
  } finally {
    await engine.close();
  }
}

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    socket.once('open', () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** One `buy` frame, with an idempotency key if `keyed`; resolves with the reply's kind: `order` or the refusal's reason. */
function buyOnce(socket: WebSocket, id: string, itemId: string, keyed: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`rehearsal: no reply to a buy within ${replyWaitMs} ms`)), replyWaitMs);
    timer.unref();
    const onMessage = (raw: WebSocket.RawData): void => {
      const message = JSON.parse(raw.toString()) as { type: string; id?: string; reason?: string };
      if (message.id !== id) return;
      clearTimeout(timer);
      socket.off('message', onMessage);
      resolve(message.type === 'order' ? 'order' : (message.reason ?? message.type));
    };
    socket.on('message', onMessage);
    socket.send(JSON.stringify(keyed ? { type: 'buy', id, item: itemId, qty: 1, idempotencyKey: `rehearsal-${id}` } : { type: 'buy', id, item: itemId, qty: 1 }));
  });
}
