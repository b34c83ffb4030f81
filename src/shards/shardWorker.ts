/**
 * A shard host: the one long-running piscina task of one worker thread. It holds the
 * MessagePort to the front end, an actor system with the slices assigned to this shard, and a
 * batching journal per inventory database. It runs until told to stop, or until the worker
 * dies; then the front end starts a new host, and the slices recover from their journals.
 *
 * Everything here can be lost at any moment: nothing is acknowledged before it is committed.
 */
import { threadId } from 'node:worker_threads';
import type { Slice, SliceFigures, SliceOutcome } from '../actors/sliceActor.js';
import { SliceHost } from '../actors/sliceHost.js';
import { systemClock } from '../clock.js';
import { BatchingJournal } from '../persistence/journal.js';
import { PostgresJournalStore } from '../persistence/postgresJournalStore.js';
import { OutageWatch } from '../persistence/outageWatch.js';
import { createPool } from '../persistence/pools.js';
import { resolveAfterRecovery } from './resolve.js';
import { sliceKey, TurnBatcher, type FromShard, type ShardTask, type SliceKey, type ToShard } from './messages.js';

const unavailable: SliceOutcome = { events: [], rejection: 'unavailable' };

function parseKey(key: SliceKey): { databaseIndex: number; sliceId: string } {
  const colon = key.indexOf(':');
  return { databaseIndex: Number(key.slice(0, colon)), sliceId: key.slice(colon + 1) };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export default async function hostShard(task: ShardTask): Promise<void> {
  const { port } = task;
  const slices = new Map<SliceKey, Slice>();
  // Only the latest figures of a slice matter.
  const figures = new Map<SliceKey, SliceFigures>();
  const out = new TurnBatcher<FromShard>(
    (messages) => port.postMessage(messages),
    () => {
      if (figures.size === 0) return [];
      const leading = [...figures].map(([slice, latest]): FromShard => ({ kind: 'figures', slice, figures: latest }));
      figures.clear();
      return leading;
    },
  );
  const log = (level: 'info' | 'warn' | 'error', message: string, detail?: unknown): void =>
    out.send({ kind: 'log', level, message, ...(detail === undefined ? {} : { detail: describe(detail) }) });

  const databases = task.databaseUrls.map((url, databaseIndex) => {
    const pool = createPool({ connectionString: url, connectionsMax: 4 });
    const outage = new OutageWatch(`shard ${task.shardIndex}: inventory database ${databaseIndex}`, log);
    const journal = new BatchingJournal(new PostgresJournalStore(pool), {
      clock: systemClock,
      flushEventsMax: task.flushEventsMax,
      onFlush: (report) => {
        out.send({ kind: 'flushed', events: report.events, durationMs: report.durationMs, committed: report.committed });
        if (!report.committed) log('error', `shard ${task.shardIndex}: journal flush of ${report.events} events failed`, report.error);
        outage.flushed(report);
      },
    });
    const host = new SliceHost({
      journal,
      clock: systemClock,
      snapshotEvery: task.snapshotEvery,
      mailboxDepthMax: task.mailboxDepthMax,
      backlogEventsMax: task.backlogEventsMax,
      onFigures: (sliceId, latest) => {
        figures.set(sliceKey(databaseIndex, sliceId), latest);
        out.schedule();
      },
      onError: (error, context) => log('error', `shard ${task.shardIndex}: ${context}`, error),
      onServing: (sliceId, serving) => out.send({ kind: 'serving', slice: sliceKey(databaseIndex, sliceId), serving }),
    });
    return { pool, journal, host };
  });

  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  let stopping = false;

  const stop = async (): Promise<void> => {
    stopping = true;
    for (const database of databases) {
      await database.host.close();
      await database.pool.end();
    }
    out.flush();
    port.close();
    finished();
  };

  port.on('message', (messages: ToShard[]) => {
    for (const message of messages) {
      switch (message.kind) {
        case 'spawn': {
          const { databaseIndex, sliceId } = parseKey(message.slice);
          const database = databases[databaseIndex];
          if (database === undefined) {
            out.send({ kind: 'spawn_failed', slice: message.slice, message: `no inventory database ${databaseIndex}` });
            break;
          }
          const slice = database.host.spawn(sliceId);
          slices.set(message.slice, slice);
          slice.ready.then(
            () => out.send({ kind: 'ready', slice: message.slice }),
            (error: unknown) => out.send({ kind: 'spawn_failed', slice: message.slice, message: describe(error) }),
          );
          break;
        }
        case 'submit': {
          const slice = slices.get(message.slice);
          if (slice === undefined || stopping) {
            out.send({ kind: 'outcome', request: message.request, outcome: unavailable });
            break;
          }
          void slice.submit(message.command).then((outcome) => out.send({ kind: 'outcome', request: message.request, outcome }));
          break;
        }
        case 'resolve': {
          const slice = slices.get(message.slice);
          const database = databases[parseKey(message.slice).databaseIndex];
          if (slice === undefined || database === undefined) {
            out.send({ kind: 'outcome', request: message.request, outcome: { events: [], rejection: null, outcomeUnknown: true } });
            break;
          }
          void resolveAfterRecovery(slice, database.journal, message.command, message.afterVersion).then((outcome) =>
            out.send({ kind: 'outcome', request: message.request, outcome }),
          );
          break;
        }
        case 'idle':
          void Promise.all(databases.map((database) => database.host.idle())).then(() =>
            out.send({ kind: 'idle', request: message.request }),
          );
          break;
        case 'stop':
          void stop();
          break;
      }
    }
  });
  out.send({ kind: 'started', threadId });
  log('info', `shard ${task.shardIndex} started on thread ${threadId}`);
  await done;
}
