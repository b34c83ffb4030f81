/**
 * Tells the stock listeners about changed items, at most once per item per event-loop turn:
 * a hot item changes thousands of times a turn, and a listener only needs the latest figures.
 */
import type { ItemView } from '../items.js';

export class StockNotifier {
  private readonly listeners = new Set<(view: ItemView) => void>();
  private readonly changedItems = new Set<string>();
  private scheduled = false;

  constructor(private readonly viewOf: (itemId: string) => ItemView | undefined) {}

  listen(listener: (view: ItemView) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(itemId: string): void {
    if (this.listeners.size === 0) return;
    this.changedItems.add(itemId);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const itemIds = [...this.changedItems];
      this.changedItems.clear();
      for (const changed of itemIds) {
        const view = this.viewOf(changed);
        if (view === undefined) continue;
        for (const listener of this.listeners) listener(view);
      }
    });
  }
}
