/**
 * The live dashboard's feed: every `dashboardIntervalMs` one snapshot of the sale is built and
 * sent to every open stream of GET /dashboard/events as a server-sent event. Item figures come
 * from the engine's memory (never the database) and are public, as GET /items/:id is; the
 * operational figures go only to streams opened with the admin token.
 *
 * A dashboard that reads slowly never grows the server's memory: while a stream has unsent
 * bytes it is skipped, and it gets the next snapshot once it has caught up, so it only ever
 * misses figures that a later snapshot replaces.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { ItemView } from '../items.js';
import type { LiveFiguresSnapshot } from '../liveFigures.js';
import type { ServerContext } from './context.js';

export const dashboardIntervalMs = 500;
/** Dashboards open at once at most; more get 503. */
export const dashboardStreamsMax = 64;
/** Items in one snapshot at most, the lowest ids first; `itemsTotal` says how many there are. */
export const dashboardItemsMax = 200;

export interface OperationsFigures extends LiveFiguresSnapshot {
  readonly openConnections: number;
  readonly dashboards: number;
  readonly requestsInFlight: number;
  readonly journalBacklogEvents: number;
  /** How far the order projections trail the journals (src/orders/projector.ts); null once the engine is closed. */
  readonly projectionLag: { readonly events: number; readonly ms: number } | null;
}

export interface DashboardSnapshot {
  readonly at: number;
  readonly items: readonly ItemView[];
  readonly itemsTotal: number;
  /** Only on streams opened with the admin token. */
  readonly operations?: OperationsFigures;
}

interface Stream {
  readonly response: HttpResponse;
  readonly admin: boolean;
  /** Bytes of an earlier event still wait to be sent. */
  congested: boolean;
}

export class DashboardFeed {
  private readonly streams = new Set<Stream>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly context: ServerContext,
    private readonly openConnections: () => number,
  ) {}

  get count(): number {
    return this.streams.size;
  }

  get full(): boolean {
    return this.streams.size >= dashboardStreamsMax;
  }

  /** Starts an event stream on `response` (status and headers not yet written) and sends the current snapshot. */
  open(response: HttpResponse, admin: boolean): void {
    const stream: Stream = { response, admin, congested: false };
    response.onAborted(() => {
      (response as { aborted?: boolean }).aborted = true;
      this.streams.delete(stream);
      if (this.streams.size === 0) this.pause();
    });
    response.cork(() => {
      response
        .writeStatus('200 OK')
        .writeHeader('content-type', 'text/event-stream; charset=utf-8')
        .writeHeader('cache-control', 'no-store')
        .writeHeader('x-content-type-options', 'nosniff');
    });
    this.streams.add(stream);
    this.write(stream, eventText(this.snapshot(admin)));
    this.timer ??= setInterval(() => this.broadcast(), dashboardIntervalMs);
    this.timer.unref();
  }

  /** Ends every stream, for a server that stops. */
  stop(): void {
    this.pause();
    for (const stream of this.streams) {
      if ((stream.response as { aborted?: boolean }).aborted === true) continue;
      stream.response.cork(() => stream.response.end());
    }
    this.streams.clear();
  }

  snapshot(admin: boolean): DashboardSnapshot {
    const { engine, metrics, inFlight } = this.context;
    const ids = engine.itemIds().sort(byDecimalValue);
    const items: ItemView[] = [];
    for (const id of ids.slice(0, dashboardItemsMax)) {
      const view = engine.item(id);
      if (view !== undefined) items.push(view);
    }
    const snapshot = { at: Date.now(), items, itemsTotal: ids.length };
    if (!admin) return snapshot;
    return {
      ...snapshot,
      operations: {
        ...metrics.live.snapshot(),
        openConnections: this.openConnections(),
        dashboards: this.streams.size,
        requestsInFlight: inFlight.count,
        journalBacklogEvents: engine.isClosed ? 0 : engine.journalBacklog,
        projectionLag: engine.isClosed
          ? null
          : { events: engine.orderService.projectionLagEvents, ms: engine.orderService.projectionLagMs },
      },
    };
  }

  private broadcast(): void {
    let publicText: string | undefined;
    let adminText: string | undefined;
    for (const stream of this.streams) {
      if (stream.congested) continue;
      const text = stream.admin ? (adminText ??= eventText(this.snapshot(true))) : (publicText ??= eventText(this.snapshot(false)));
      this.write(stream, text);
    }
  }

  private write(stream: Stream, text: string): void {
    const { response } = stream;
    if ((response as { aborted?: boolean }).aborted === true) return;
    let sent = true;
    response.cork(() => {
      sent = response.write(text);
    });
    if (sent) return;
    // uWebSockets.js keeps the rest of this event and calls onWritable as the socket drains.
    stream.congested = true;
    response.onWritable(() => {
      stream.congested = false;
      return true;
    });
  }

  private pause(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

function eventText(snapshot: DashboardSnapshot): string {
  return `event: figures\ndata: ${JSON.stringify(snapshot)}\n\n`;
}

/** Orders decimal ids by their value: a shorter one is smaller (ids have no leading zeros). */
function byDecimalValue(left: string, right: string): number {
  return left.length - right.length || (left < right ? -1 : left > right ? 1 : 0);
}
