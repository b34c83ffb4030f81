/**
 * The front end's side of the shard workers: a piscina pool pinned to a fixed number of
 * threads, each running one long-running host task (src/shards/shardWorker.ts) that holds a
 * MessagePort. Commands go out and replies come back in one batch per event-loop turn.
 *
 * A worker that throws or exits is replaced: a new host is started, its slices recover from
 * their journals, and the other shards serve on meanwhile. Its requests in flight may have
 * committed (a batch can commit just before the worker dies, its replies lost), so they are
 * not answered `unavailable`: each is handed to the new host, which answers it once its slice
 * has recovered, from the journal (see `resolveAfterRecovery` in shardWorker.ts). Nothing
 * acknowledged is lost, because nothing is acknowledged before it committed.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { noFigures, type SliceFigures, type SliceHandle, type SliceOutcome } from '../actors/sliceActor.js';
import type { SliceCommand } from '../domain/slice.js';
import type { FlushReport } from '../persistence/journal.js';
import { sliceKey, TurnBatcher, type FromShard, type ShardTask, type SliceKey, type ToShard } from './messages.js';

export interface ShardPoolOptions {
  readonly shards: number;
  readonly databaseUrls: readonly string[];
  readonly flushEventsMax?: number | undefined;
  readonly snapshotEvery?: number | undefined;
  readonly mailboxDepthMax?: number | undefined;
  readonly backlogEventsMax?: number | undefined;
  /** Requests one shard may have unanswered at most; past it, `unavailable`. */
  readonly requestsInFlightMax?: number;
  /** A slice's committed figures changed. */
  readonly onFigures: (sliceId: string, figures: SliceFigures) => void;
  readonly onShardRecovered?: (shardIndex: number) => void;
  /** Told about every journal flush on every shard, for metrics. */
  readonly onFlush?: ((report: FlushReport) => void) | undefined;
  readonly log: (level: 'info' | 'warn' | 'error', message: string, detail?: unknown) => void;
}

const unavailable: SliceOutcome = { events: [], rejection: 'unavailable' };
const outcomeUnknown: SliceOutcome = { events: [], rejection: null, outcomeUnknown: true };
export const requestsInFlightMaxDefault = 200_000;

/** The worker file beside this module: TypeScript under tsx and vitest, JavaScript once built. */
function workerFile(): { filename: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const extension = path.extname(here);
  return {
    filename: path.join(path.dirname(here), `shardWorker${extension}`),
    execArgv: extension === '.ts' ? ['--import', 'tsx'] : [],
  };
}

/** A slice hosted on a shard worker, as the engine sees it. */
export class RemoteSlice implements SliceHandle {
  figures: SliceFigures = noFigures;
  readonly ready: Promise<void>;
  ok = false;
  /** True once the slice has been ready at least once: a later 'ready' ends a recovery. */
  wasReady = false;
  private started!: () => void;
  private failed!: (error: Error) => void;

  constructor(
    private readonly pool: ShardPool,
    readonly shardIndex: number,
    readonly key: SliceKey,
  ) {
    this.ready = new Promise((resolve, reject) => {
      this.started = resolve;
      this.failed = reject;
    });
  }

  get inboxDepth(): number {
    return 0;
  }

  /** False while reloading inside the worker, as the worker reports it. */
  sliceServing = true;

  /** Ready on a live shard, and not reloading inside it. */
  get serving(): boolean {
    return this.ok && this.sliceServing;
  }

  submit(command: SliceCommand): Promise<SliceOutcome> {
    if (!this.ok) return Promise.resolve(unavailable);
    return this.pool.submit(this.shardIndex, this.key, command, this.figures.version);
  }

  markReady(): void {
    this.ok = true;
    this.sliceServing = true;
    this.wasReady = true;
    this.started();
  }

  markFailed(message: string): void {
    this.ok = false;
    this.failed(new Error(message));
  }
}

/** A request sent to a shard and not yet answered: enough to resolve it if the worker dies. */
interface PendingRequest {
  readonly reply: (outcome: SliceOutcome) => void;
  readonly slice: SliceKey;
  readonly command: SliceCommand;
  /**
   * The slice's committed version when the request was sent: its event, if it committed, lies
   * after that many committed events, which bounds where the journal is searched.
   */
  readonly afterVersion: number;
}

interface Shard {
  index: number;
  port: MessagePort | null;
  out: TurnBatcher<ToShard> | null;
  running: boolean;
  /** The worker thread running this shard's host, once it has said so. */
  threadId: number | null;
  task: Promise<void> | null;
  readonly pending: Map<number, PendingRequest>;
  readonly slices: Map<SliceKey, RemoteSlice>;
}

export class ShardPool {
  private readonly piscina: Piscina;
  private readonly shards: Shard[];
  private readonly requestsInFlightMax: number;
  private nextRequest = 1;
  private readonly idleWaiters = new Map<number, () => void>();
  private closing = false;

  constructor(private readonly options: ShardPoolOptions) {
    if (!Number.isInteger(options.shards) || options.shards < 1) throw new RangeError('shards must be a positive integer');
    const { filename, execArgv } = workerFile();
    this.piscina = new Piscina({
      filename,
      execArgv,
      // One host task per worker, for the life of the pool: the thread count is pinned, and
      // no worker ever idles out, blocks in Atomics.wait, or takes a second task.
      minThreads: options.shards,
      maxThreads: options.shards,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      atomics: 'disabled',
    });
    // A dying worker is reported through its task's rejection; this only keeps the pool's own
    // 'error' event from crashing the process.
    this.piscina.on('error', (error: unknown) => options.log('error', 'a shard worker failed', error));
    this.requestsInFlightMax = options.requestsInFlightMax ?? requestsInFlightMaxDefault;
    this.shards = Array.from({ length: options.shards }, (_, index) => ({
      index,
      port: null,
      out: null,
      running: false,
      threadId: null,
      task: null,
      pending: new Map(),
      slices: new Map(),
    }));
    for (const shard of this.shards) this.launch(shard);
  }

  get shardCount(): number {
    return this.shards.length;
  }

  /** Places a slice on a shard; `ready` settles once it has recovered there. */
  spawn(shardIndex: number, databaseIndex: number, sliceId: string): RemoteSlice {
    const shard = this.shards[shardIndex % this.shards.length]!;
    const key = sliceKey(databaseIndex, sliceId);
    const existing = shard.slices.get(key);
    if (existing !== undefined) return existing;
    const slice = new RemoteSlice(this, shard.index, key);
    shard.slices.set(key, slice);
    shard.out?.send({ kind: 'spawn', slice: key });
    return slice;
  }

  submit(shardIndex: number, key: SliceKey, command: SliceCommand, afterVersion: number): Promise<SliceOutcome> {
    const shard = this.shards[shardIndex]!;
    if (!shard.running || shard.out === null || shard.pending.size >= this.requestsInFlightMax) {
      return Promise.resolve(unavailable);
    }
    const request = this.nextRequest++;
    return new Promise((resolve) => {
      shard.pending.set(request, { reply: resolve, slice: key, command, afterVersion });
      shard.out!.send({ kind: 'submit', request, slice: key, command });
    });
  }

  /** Resolves once no request is in flight and every shard says its slices are idle. */
  async idle(): Promise<void> {
    for (;;) {
      await Promise.all(
        this.shards.map(
          (shard) =>
            new Promise<void>((resolve) => {
              if (!shard.running || shard.out === null) return resolve();
              const request = this.nextRequest++;
              this.idleWaiters.set(request, resolve);
              shard.out.send({ kind: 'idle', request });
            }),
        ),
      );
      if (this.requestsInFlight === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  get requestsInFlight(): number {
    return this.shards.reduce((sum, shard) => sum + shard.pending.size, 0);
  }

  /** Kills a shard's worker thread from outside, as a crash would: for fault drills and tests. */
  async terminateWorker(shardIndex: number): Promise<void> {
    const shard = this.shards[shardIndex];
    if (shard === undefined) throw new RangeError(`no shard ${shardIndex}`);
    const worker = this.piscina.threads.find((thread) => thread.threadId === shard.threadId);
    if (worker === undefined) throw new Error(`shard ${shardIndex} has no live worker`);
    await worker.terminate();
  }

  /** Lets every shard commit and answer what it holds, then stops the workers. */
  async close(): Promise<void> {
    this.closing = true;
    for (const shard of this.shards) {
      shard.out?.send({ kind: 'stop' });
      shard.out?.flush();
    }
    await Promise.allSettled(this.shards.map((shard) => shard.task));
    for (const shard of this.shards) this.abandon(shard);
    await this.piscina.destroy();
  }

  private launch(shard: Shard): void {
    const channel = new MessageChannel();
    const port = channel.port1;
    shard.port = port;
    shard.out = new TurnBatcher<ToShard>((messages) => port.postMessage(messages));
    shard.running = true;
    port.on('message', (messages: FromShard[]) => this.receive(shard, messages));
    const task: ShardTask = {
      port: channel.port2,
      shardIndex: shard.index,
      databaseUrls: this.options.databaseUrls,
      flushEventsMax: this.options.flushEventsMax,
      snapshotEvery: this.options.snapshotEvery,
      mailboxDepthMax: this.options.mailboxDepthMax,
      backlogEventsMax: this.options.backlogEventsMax,
    };
    shard.task = this.piscina.run(task, { transferList: [channel.port2] as never }).then(
      () => undefined,
      (error: unknown) => this.died(shard, error),
    );
    // A restarted host gets every slice it had; they recover from their journals.
    for (const slice of shard.slices.values()) {
      shard.out.send({ kind: 'spawn', slice: slice.key });
    }
  }

  private died(shard: Shard, error: unknown): void {
    if (this.closing) return;
    this.options.log('error', `shard ${shard.index} died; replacing it and recovering its slices`, error);
    this.forgetPort(shard);
    for (const slice of shard.slices.values()) slice.ok = false;
    this.launch(shard);
    // What the dead host owed may have committed: the new host answers it once the slice has
    // recovered (and so fenced the dead host's writes), from what the journal holds.
    for (const [request, { slice, command, afterVersion }] of shard.pending) {
      shard.out!.send({ kind: 'resolve', request, slice, command, afterVersion });
    }
  }

  private forgetPort(shard: Shard): void {
    // Whoever waits for the shards to be idle asks again, of the host that replaces this one.
    for (const wake of this.idleWaiters.values()) wake();
    this.idleWaiters.clear();
    shard.running = false;
    shard.threadId = null;
    shard.port?.close();
    shard.port = null;
    shard.out = null;
  }

  /** Forgets the shard's port and answers what it still owed (see below). */
  private abandon(shard: Shard): void {
    this.forgetPort(shard);
    const pending = [...shard.pending.values()];
    shard.pending.clear();
    // Only at close: the host stopped without answering these, so whether they committed is
    // not known (a host answers everything before it stops, so this is for a host that died).
    for (const { reply } of pending) reply(outcomeUnknown);
  }

  private receive(shard: Shard, messages: FromShard[]): void {
    for (const message of messages) {
      switch (message.kind) {
        case 'figures': {
          const slice = shard.slices.get(message.slice);
          if (slice === undefined) break;
          slice.figures = message.figures;
          this.options.onFigures(message.slice.slice(message.slice.indexOf(':') + 1), message.figures);
          break;
        }
        case 'ready': {
          const slice = shard.slices.get(message.slice);
          if (slice === undefined) break;
          const recovering = slice.wasReady && !slice.ok;
          slice.markReady();
          if (recovering && [...shard.slices.values()].every((each) => each.ok)) this.options.onShardRecovered?.(shard.index);
          break;
        }
        case 'serving': {
          const slice = shard.slices.get(message.slice);
          if (slice !== undefined) slice.sliceServing = message.serving;
          break;
        }
        case 'spawn_failed':
          shard.slices.get(message.slice)?.markFailed(message.message);
          this.options.log('error', `slice ${message.slice} failed to start on shard ${shard.index}: ${message.message}`);
          break;
        case 'outcome': {
          const pending = shard.pending.get(message.request);
          if (pending === undefined) break;
          shard.pending.delete(message.request);
          pending.reply(message.outcome);
          break;
        }
        case 'flushed':
          this.options.onFlush?.({ events: message.events, durationMs: message.durationMs, committed: message.committed });
          break;
        case 'idle': {
          const wake = this.idleWaiters.get(message.request);
          this.idleWaiters.delete(message.request);
          wake?.();
          break;
        }
        case 'started':
          shard.threadId = message.threadId;
          break;
        case 'log':
          this.options.log(message.level, message.message, message.detail);
          break;
      }
    }
  }

}
