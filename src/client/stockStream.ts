/**
 * The stock feed as an async iterator. A consumer slower than the pushes gets the latest
 * figures of each item rather than a growing backlog: an item's unread update is replaced by
 * a newer one (figures of one item are never reordered, since each push carries later figures
 * than the one before). So memory is bounded by the number of items watched.
 */
import type { StockUpdate } from './messages.js';

export class StockStream implements AsyncIterableIterator<StockUpdate> {
  /** Unread updates, at most one per item, in the order the items changed. */
  private readonly unread = new Map<string, StockUpdate>();
  private waiting: ((result: IteratorResult<StockUpdate>) => void) | null = null;
  private ended = false;

  constructor(
    private readonly wanted: (update: StockUpdate) => boolean,
    private readonly onEnd: () => void,
  ) {}

  /** Called by the client for every push. */
  push(update: StockUpdate): void {
    if (this.ended || !this.wanted(update)) return;
    if (this.waiting !== null) {
      const wake = this.waiting;
      this.waiting = null;
      wake({ value: update, done: false });
      return;
    }
    this.unread.delete(update.item);
    this.unread.set(update.item, update);
  }

  next(): Promise<IteratorResult<StockUpdate>> {
    const first = this.unread.entries().next();
    if (!first.done) {
      this.unread.delete(first.value[0]);
      return Promise.resolve({ value: first.value[1], done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /** Ends the stream (a `break` out of `for await` calls this). */
  return(): Promise<IteratorResult<StockUpdate>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.unread.clear();
    this.onEnd();
    const wake = this.waiting;
    this.waiting = null;
    wake?.({ value: undefined, done: true });
  }
}
