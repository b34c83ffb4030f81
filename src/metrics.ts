/**
 * The server's Prometheus metrics, served at GET /metrics. Each server process owns one
 * registry (not prom-client's global one), so several servers in one test process never share
 * counters.
 *
 * - seckill_requests_total{type,outcome}: WebSocket requests by type and by outcome (`ok` or
 *   the rejection reason).
 * - seckill_flush_batch_events / seckill_flush_duration_seconds: the journal's group commits,
 *   fed by the engine's `onFlush`; seckill_flush_failures_total counts the failed ones.
 * - seckill_open_connections, seckill_journal_backlog_events (decided but not yet committed),
 *   seckill_requests_in_flight (handed to the engine, not answered yet).
 * - seckill_stock_pushes_total{kind}, seckill_connections_closed_total{reason}, and
 *   seckill_congested_connections (connections whose stock pushes are held back as they lag).
 * - seckill_ack_duration_seconds{type}: from a request's arrival to its answer, for the
 *   requests the engine decides (reserve, buy, confirm, cancel).
 * - seckill_projection_lag_events (journal events an order database has not taken in yet),
 *   seckill_projection_lag_seconds (per order written, from its decision to its projection's
 *   commit, fed by the engine's `onProjection`), and seckill_pending_orders (acknowledged orders
 *   kept in memory for read-your-writes until projected).
 * - The process's default metrics (memory, event-loop lag, ...).
 *
 * `live` holds the last seconds of the same observations for the dashboard (liveFigures.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { rejectionReasons } from './domain/reasons.js';
import { requestTypes } from './edge/protocol.js';
import { LiveFigures } from './liveFigures.js';
import { OutcomeTallies, TypeHistogram } from './replyTallies.js';
import type { FlushReport } from './persistence/journal.js';
import type { ProjectionReport } from './orders/projector.js';

/** Requests whose answer is an order being acknowledged, for the orders/s figure. */
const orderingRequests: ReadonlySet<string> = new Set(['buy', 'confirm']);

export class Metrics {
  readonly registry = new Registry();
  readonly live: LiveFigures;
  private readonly requests: Counter<'type' | 'outcome'>;
  /** Counted on the reply path, added to `requests` when /metrics is read (see replyTallies.ts). */
  private readonly requestTallies = new OutcomeTallies([...requestTypes, 'malformed'], ['ok', ...rejectionReasons]);
  private readonly flushBatch: Histogram;
  private readonly flushDuration: Histogram;
  private readonly flushFailures: Counter;
  private readonly openConnections: Gauge;
  private readonly stockPushes: Counter<'kind'>;
  private readonly closedConnections: Counter<'reason'>;
  private readonly ackDuration: TypeHistogram;
  private journalBacklogSource: () => number = () => 0;
  private congestedSource: () => number = () => 0;
  private inFlightSource: () => number = () => 0;
  private projectionSource: () => { lagEvents: number; pendingOrders: number } = () => ({ lagEvents: 0, pendingOrders: 0 });
  private readonly projectionLag: Histogram;

  /** `now` is the clock of the live figures' window (wall time by default). */
  constructor(options: { now?: () => number } = {}) {
    this.live = new LiveFigures({ now: options.now ?? Date.now });
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'seckill_requests_total',
      help: 'WebSocket requests by type and outcome (ok or the rejection reason).',
      labelNames: ['type', 'outcome'],
      registers,
      collect: () => this.requestTallies.drainInto(this.requests),
    });
    this.flushBatch = new Histogram({
      name: 'seckill_flush_batch_events',
      help: 'Events written by one journal flush (group commit).',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_000, 4_000, 8_000],
      registers,
    });
    this.flushDuration = new Histogram({
      name: 'seckill_flush_duration_seconds',
      help: 'Duration of one journal flush, from start to commit.',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.flushFailures = new Counter({
      name: 'seckill_flush_failures_total',
      help: 'Journal flushes that did not commit.',
      registers,
    });
    this.openConnections = new Gauge({
      name: 'seckill_open_connections',
      help: 'Open WebSocket connections.',
      registers,
    });
    const backlog = (): number => this.journalBacklogSource();
    new Gauge({
      name: 'seckill_journal_backlog_events',
      help: 'Events decided but not yet committed: how far durability lags behind decisions.',
      registers,
      collect() {
        this.set(backlog());
      },
    });
    const inFlight = (): number => this.inFlightSource();
    new Gauge({
      name: 'seckill_requests_in_flight',
      help: 'Requests handed to the engine and not answered yet.',
      registers,
      collect() {
        this.set(inFlight());
      },
    });
    const congested = (): number => this.congestedSource();
    new Gauge({
      name: 'seckill_congested_connections',
      help: 'Connections that read too slowly and get no stock pushes until they catch up.',
      registers,
      collect() {
        this.set(congested());
      },
    });
    const projection = (): { lagEvents: number; pendingOrders: number } => this.projectionSource();
    new Gauge({
      name: 'seckill_projection_lag_events',
      help: 'Journal events committed and not yet taken in by an order database (the largest over them).',
      registers,
      collect() {
        this.set(projection().lagEvents);
      },
    });
    new Gauge({
      name: 'seckill_pending_orders',
      help: 'Acknowledged orders kept in memory for read-your-writes until the projection holds them.',
      registers,
      collect() {
        this.set(projection().pendingOrders);
      },
    });
    this.projectionLag = new Histogram({
      name: 'seckill_projection_lag_seconds',
      help: 'Per order or cancellation written to an order database: from its decision to the commit of its projection.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.stockPushes = new Counter({
      name: 'seckill_stock_pushes_total',
      help: 'Stock pushes: published to an item topic, or sent to one connection.',
      labelNames: ['kind'],
      registers,
    });
    this.closedConnections = new Counter({
      name: 'seckill_connections_closed_total',
      help: 'WebSocket connections closed by the server, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.ackDuration = new TypeHistogram(
      'seckill_ack_duration_seconds',
      'From the arrival of a request the engine decides to its answer, by request type.',
      [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      ['buy', 'reserve', 'confirm', 'cancel'],
      this.registry,
    );
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  request(type: string, outcome: string): void {
    this.requestTallies.add(type, outcome);
    if (outcome === 'ok' && orderingRequests.has(type)) this.live.order();
  }

  /** A request the engine decided was answered, `durationMs` after it arrived. */
  acknowledged(type: string, durationMs: number): void {
    this.ackDuration.observe(type, durationMs / 1_000);
    this.live.acknowledged(durationMs);
  }

  /** Pass as the engine's `onFlush`. */
  readonly flush = (report: FlushReport): void => {
    if (!report.committed) {
      this.flushFailures.inc();
      return;
    }
    this.flushBatch.observe(report.events);
    this.flushDuration.observe(report.durationMs / 1_000);
    this.live.flushed(report.events, report.durationMs);
  };

  connectionOpened(): void {
    this.openConnections.inc();
  }

  connectionClosed(): void {
    this.openConnections.dec();
  }

  connectionClosedBy(reason: 'too_slow' | 'token_expired' | 'shutdown'): void {
    this.closedConnections.labels(reason).inc();
  }

  stockPush(kind: 'published' | 'sent'): void {
    this.stockPushes.labels(kind).inc();
  }

  /** Where the journal backlog gauge reads from (the engine's `journalBacklog`). */
  watchJournalBacklog(source: () => number): void {
    this.journalBacklogSource = source;
  }

  /** Pass as the engine's `onProjection`. */
  readonly projection = (report: ProjectionReport): void => {
    for (const lagMs of report.lagsMs) this.projectionLag.observe(lagMs / 1_000);
  };

  /** Where the projection gauges read from (the engine's order service). */
  watchProjection(source: () => { lagEvents: number; pendingOrders: number }): void {
    this.projectionSource = source;
  }

  /** Where the in-flight requests gauge reads from. */
  watchInFlight(source: () => number): void {
    this.inFlightSource = source;
  }

  /** Where the congested-connections gauge reads from. */
  watchCongestion(source: () => number): void {
    this.congestedSource = source;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
