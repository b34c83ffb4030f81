/**
 * One logical connection to the server that survives drops: it opens a WebSocket with a fresh
 * token from the token provider, and when the socket closes for any reason other than
 * `close()`, it opens another after a jittered exponential backoff. Browsers' standard
 * `WebSocket` is used where there is one; in Node 20, which has none, the `ws` package.
 *
 * The backoff starts again from the shortest wait only after a connection stayed open for
 * `stableConnectionMs`, so a server that accepts and at once drops connections (one that is
 * shutting down, say) is not hammered.
 */
import { backoffDelayMs, type BackoffPolicy } from './backoff.js';

/** What the client needs of a WebSocket; the browser's and the `ws` package's both fit. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => SocketLike;

/** A user JWT, or a function that gets one; it is called again before every reconnect. */
export type TokenProvider = string | (() => string | Promise<string>);

export type ConnectionState = 'connecting' | 'open' | 'waiting' | 'closed';

export interface ConnectionChange {
  readonly state: ConnectionState;
  /** On `waiting`: the close code of the connection that was lost (1006 when none was given). */
  readonly closeCode?: number;
  readonly closeReason?: string;
  /** On `waiting`: how long until the next attempt. */
  readonly retryInMs?: number;
  /** On `waiting`, when the token provider failed: its error. */
  readonly error?: unknown;
}

export interface ReconnectingSocketOptions {
  readonly url: string;
  readonly token: TokenProvider;
  readonly backoff: BackoffPolicy;
  readonly stableConnectionMs: number;
  readonly WebSocket: WebSocketConstructor | undefined;
  readonly random: () => number;
  readonly onOpen: () => void;
  readonly onText: (text: string) => void;
  /** The socket closed (or never opened); `onOpen` comes again after the next successful attempt. */
  readonly onLost: () => void;
  readonly onChange: (change: ConnectionChange) => void;
}

/** The token expired on an open connection: reconnect at once with a fresh one. */
const tokenExpiredCode = 4401;

export class ReconnectingSocket {
  private socket: SocketLike | null = null;
  private openSince: number | null = null;
  private failedAttempts = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  constructor(private readonly options: ReconnectingSocketOptions) {
    void this.connect();
  }

  get isOpen(): boolean {
    return this.openSince !== null;
  }

  /** Sends on the open socket; false when there is none (the caller queues). */
  send(text: string): boolean {
    if (this.socket === null || this.openSince === null) return false;
    this.socket.send(text);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    const socket = this.socket;
    this.socket = null;
    this.openSince = null;
    if (socket !== null) {
      detach(socket);
      socket.close(1000, 'client closed');
    }
    this.options.onChange({ state: 'closed' });
  }

  private async connect(): Promise<void> {
    this.retryTimer = null;
    if (this.closed) return;
    this.options.onChange({ state: 'connecting' });
    let socket: SocketLike;
    try {
      const token = typeof this.options.token === 'string' ? this.options.token : await this.options.token();
      const WebSocketClass = this.options.WebSocket ?? (await defaultWebSocket());
      if (this.closed) return;
      const target = new URL(this.options.url);
      target.searchParams.set('token', token);
      socket = new WebSocketClass(target.toString());
    } catch (error) {
      this.retryLater({ error });
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.openSince = Date.now();
      this.options.onChange({ state: 'open' });
      this.options.onOpen();
    };
    socket.onmessage = (event) => {
      if (typeof event.data === 'string') this.options.onText(event.data);
    };
    // Every failure, a refused upgrade included, ends in `close`; the error itself says no more.
    socket.onerror = () => undefined;
    socket.onclose = (event) => {
      detach(socket);
      if (this.socket !== socket) return;
      this.socket = null;
      const wasOpen = this.openSince !== null;
      if (wasOpen && Date.now() - this.openSince! >= this.options.stableConnectionMs) this.failedAttempts = 0;
      this.openSince = null;
      this.options.onLost();
      const immediately = event.code === tokenExpiredCode && this.failedAttempts === 0;
      this.retryLater({ closeCode: event.code, closeReason: event.reason }, immediately);
    };
  }

  private retryLater(detail: Pick<ConnectionChange, 'closeCode' | 'closeReason' | 'error'>, immediately = false): void {
    if (this.closed) return;
    const delayMs = immediately ? 0 : backoffDelayMs(this.options.backoff, this.failedAttempts, this.options.random);
    this.failedAttempts += 1;
    this.options.onChange({ state: 'waiting', retryInMs: delayMs, ...detail });
    this.retryTimer = setTimeout(() => void this.connect(), delayMs);
  }
}

function detach(socket: SocketLike): void {
  socket.onopen = null;
  socket.onmessage = null;
  socket.onclose = null;
  socket.onerror = () => undefined;
}

let nodeWebSocket: Promise<WebSocketConstructor> | undefined;

/**
 * The standard `WebSocket` where the platform has one, else the `ws` package (Node 20). The
 * module name is held in a variable so that bundlers for the browser do not try to pack `ws`.
 */
function defaultWebSocket(): Promise<WebSocketConstructor> {
  const standard = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (standard !== undefined) return Promise.resolve(standard);
  const moduleName = 'ws';
  nodeWebSocket ??= (import(/* @vite-ignore */ moduleName) as Promise<{ default: WebSocketConstructor }>).then((loaded) => loaded.default);
  return nodeWebSocket;
}
