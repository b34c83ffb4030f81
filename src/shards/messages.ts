/**
 * What the front end and a shard worker say to each other over their MessagePort. Each side
 * sends one array of these per event-loop turn, never one message per command.
 */
import type { MessagePort } from 'node:worker_threads';
import type { SliceCommand } from '../domain/slice.js';
import type { SliceFigures, SliceOutcome } from '../actors/sliceActor.js';

/** A slice as the shards name it: its inventory database and its row id there. */
export type SliceKey = `${number}:${string}`;

export function sliceKey(databaseIndex: number, sliceId: string): SliceKey {
  return `${databaseIndex}:${sliceId}`;
}

export type ToShard =
  | { readonly kind: 'spawn'; readonly slice: SliceKey }
  | { readonly kind: 'submit'; readonly request: number; readonly slice: SliceKey; readonly command: SliceCommand }
  /**
   * A request a dead host left unanswered: answer it once the slice has recovered, from the
   * journal, searching after the slice's `afterVersion`-th committed event.
   */
  | {
      readonly kind: 'resolve';
      readonly request: number;
      readonly slice: SliceKey;
      readonly command: SliceCommand;
      readonly afterVersion: number;
    }
  /** Answer `idle` once every slice of the shard is idle (see `SliceHost.idle`). */
  | { readonly kind: 'idle'; readonly request: number }
  | { readonly kind: 'stop' };

export type FromShard =
  | { readonly kind: 'started'; readonly threadId: number }
  | { readonly kind: 'idle'; readonly request: number }
  | { readonly kind: 'ready'; readonly slice: SliceKey }
  /** A slice stopped serving (it reloads after a failed flush) or serves again. */
  | { readonly kind: 'serving'; readonly slice: SliceKey; readonly serving: boolean }
  | { readonly kind: 'spawn_failed'; readonly slice: SliceKey; readonly message: string }
  | { readonly kind: 'outcome'; readonly request: number; readonly outcome: SliceOutcome }
  | { readonly kind: 'figures'; readonly slice: SliceKey; readonly figures: SliceFigures }
  | { readonly kind: 'flushed'; readonly events: number; readonly durationMs: number; readonly committed: boolean }
  | { readonly kind: 'log'; readonly level: 'info' | 'warn' | 'error'; readonly message: string; readonly detail?: string };

/** What a shard's host task is started with. */
export interface ShardTask {
  readonly port: MessagePort;
  readonly shardIndex: number;
  readonly databaseUrls: readonly string[];
  readonly flushEventsMax?: number | undefined;
  readonly snapshotEvery?: number | undefined;
  readonly mailboxDepthMax?: number | undefined;
  readonly backlogEventsMax?: number | undefined;
}

/**
 * Collects messages and posts them as one array at the end of the current turn, so a burst
 * of thousands of commands (or replies) costs one structured clone and one wake-up.
 */
export class TurnBatcher<Message> {
  private pending: Message[] = [];
  private scheduled = false;

  /**
   * `leading` gives messages that go first in the batch, whatever was sent before them: the
   * shard puts the coalesced figures there, so the front end has updated an item's figures
   * before it hands out the replies that changed them.
   */
  constructor(
    private readonly post: (messages: Message[]) => void,
    private readonly leading: () => Message[] = () => [],
  ) {}

  send(message: Message): void {
    this.pending.push(message);
    this.schedule();
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    const leading = this.leading();
    if (leading.length === 0 && this.pending.length === 0) return;
    const messages = leading.length === 0 ? this.pending : [...leading, ...this.pending];
    this.pending = [];
    this.post(messages);
  }
}
