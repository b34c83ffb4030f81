/**
 * The requests of one client from the call until their answer, across attempts and sockets:
 * the wire ids that correlate replies, the per-request timeout, the retries of `unavailable`
 * and `rate_limited`, the queue of requests waiting for a connection, and what becomes of an
 * attempt whose socket closed before its answer came (see SeckillClient for the promises).
 */
import { backoffDelayMs, type BackoffPolicy } from './backoff.js';
import { ClientClosedError, OutcomeUnknownError, QueueFullError, RequestTimeoutError } from './errors.js';
import { changesState, successTypes, type Outcome, type Rejected, type ReplyOf, type Request, type RequestType } from './messages.js';

export interface RequestBookOptions {
  /** Sends a frame on the open socket; false when there is none, and the request waits. */
  readonly send: (text: string) => boolean;
  readonly retry: BackoffPolicy & { readonly retriesMax: number };
  /** The server honours `idempotencyKey`, so a lost `buy` or `reserve` may be sent again. */
  readonly idempotencyKeys: boolean;
  readonly queuedRequestsMax: number;
  readonly random: () => number;
  /** Told of every success as its reply is handled, before the caller's promise resolves. */
  readonly onSuccess: (request: Request) => void;
}

type Settle = (outcome: Outcome<ReplyOf[RequestType]>) => void;

/** A request from the call until its answer: possibly several attempts, over several sockets. */
interface Pending {
  readonly type: RequestType;
  readonly request: Request;
  readonly timeoutMs: number;
  readonly resolve: Settle;
  readonly reject: (error: Error) => void;
  /** The id of the attempt waiting for its reply; null while queued or waiting to retry. */
  wireId: string | null;
  retries: number;
  /** A state-changing attempt went out and its answer was lost: it may have taken effect. */
  inDoubt: boolean;
  deadline: ReturnType<typeof setTimeout> | null;
  retryTimer: ReturnType<typeof setTimeout> | null;
}

/** Answers that promise nothing was changed, so the same request may go again. */
const retriedReasons: ReadonlySet<string> = new Set(['unavailable', 'rate_limited']);

export class RequestBook {
  /** Requests waiting for a connection, in the order they were made. */
  private queue: Pending[] = [];
  private readonly awaiting = new Map<string, Pending>();
  private readonly all = new Set<Pending>();
  private nextWireId = 0;

  constructor(private readonly options: RequestBookOptions) {}

  request<Type extends RequestType>(request: Request & { type: Type }, timeoutMs: number, connected: boolean): Promise<Outcome<ReplyOf[Type]>> {
    const type = request.type;
    return new Promise((resolve, reject) => {
      if (!connected && this.queue.length >= this.options.queuedRequestsMax) {
        reject(new QueueFullError(type, this.options.queuedRequestsMax));
        return;
      }
      const pending: Pending = {
        type,
        request,
        timeoutMs,
        resolve: resolve as Settle,
        reject,
        wireId: null,
        retries: 0,
        inDoubt: false,
        deadline: null,
        retryTimer: null,
      };
      this.all.add(pending);
      pending.deadline = setTimeout(() => this.timedOut(pending), timeoutMs);
      this.sendOrQueue(pending);
    });
  }

  /** A socket opened: sends what waited for it, in order. */
  opened(): void {
    const queued = this.queue;
    this.queue = [];
    for (const pending of queued) this.sendOrQueue(pending);
  }

  /** The socket closed: each attempt it carried unanswered waits for the next one, or fails. */
  lost(): void {
    for (const [wireId, pending] of [...this.awaiting]) {
      this.awaiting.delete(wireId);
      pending.wireId = null;
      if (!changesState[pending.type]) {
        this.queue.push(pending);
      } else if (this.options.idempotencyKeys && (pending.type === 'buy' || pending.type === 'reserve')) {
        pending.inDoubt = true;
        this.queue.push(pending);
      } else {
        this.fail(pending, new OutcomeUnknownError(pending.type, 'connection_lost'));
      }
    }
  }

  /** A reply (a frame with an `id`); replies to nothing waiting, late ones included, are ignored. */
  answered(message: { type?: unknown; id: string }): void {
    const pending = this.awaiting.get(message.id);
    if (pending === undefined) return;
    this.awaiting.delete(message.id);
    pending.wireId = null;
    if (message.type === 'rejected') {
      this.rejected(pending, message as unknown as Rejected);
      return;
    }
    const { id: _id, ...reply } = message;
    if (reply.type !== successTypes[pending.type]) {
      this.fail(pending, new Error(`unexpected reply ${String(reply.type)} to ${pending.type}`));
      return;
    }
    this.options.onSuccess(pending.request);
    this.settle(pending, { ok: true, ...reply } as Outcome<ReplyOf[RequestType]>);
  }

  /** Fails every request: OutcomeUnknownError where it may have taken effect, else ClientClosedError. */
  closeAll(): void {
    for (const pending of [...this.all]) {
      this.fail(pending, this.mayHaveTakenEffect(pending) ? new OutcomeUnknownError(pending.type, 'client_closed') : new ClientClosedError(pending.type));
    }
  }

  private sendOrQueue(pending: Pending): void {
    const wireId = `r${(this.nextWireId += 1).toString(36)}`;
    if (this.options.send(JSON.stringify({ ...pending.request, id: wireId }))) {
      pending.wireId = wireId;
      this.awaiting.set(wireId, pending);
    } else {
      this.queue.push(pending);
    }
  }

  private rejected(pending: Pending, rejection: Rejected): void {
    if (retriedReasons.has(rejection.reason) && pending.retries < this.options.retry.retriesMax) {
      const delayMs = backoffDelayMs(this.options.retry, pending.retries, this.options.random);
      pending.retries += 1;
      pending.retryTimer = setTimeout(() => {
        pending.retryTimer = null;
        this.sendOrQueue(pending);
      }, delayMs);
      return;
    }
    // An earlier attempt whose answer was lost may have committed; "nothing changed" only
    // speaks for this attempt, so it cannot be passed on as the answer.
    if (pending.inDoubt && retriedReasons.has(rejection.reason)) {
      this.fail(pending, new OutcomeUnknownError(pending.type, 'connection_lost'));
      return;
    }
    const outcome: Rejected =
      rejection.message === undefined
        ? { ok: false, reason: rejection.reason }
        : { ok: false, reason: rejection.reason, message: rejection.message };
    this.settle(pending, outcome);
  }

  private timedOut(pending: Pending): void {
    pending.deadline = null;
    this.fail(
      pending,
      this.mayHaveTakenEffect(pending) ? new OutcomeUnknownError(pending.type, 'timeout') : new RequestTimeoutError(pending.type, pending.timeoutMs),
    );
  }

  /** True when some attempt of a state-changing request may have reached the server unanswered. */
  private mayHaveTakenEffect(pending: Pending): boolean {
    return pending.inDoubt || (changesState[pending.type] && pending.wireId !== null);
  }

  private settle(pending: Pending, outcome: Outcome<ReplyOf[RequestType]>): void {
    this.forget(pending);
    pending.resolve(outcome);
  }

  private fail(pending: Pending, error: Error): void {
    this.forget(pending);
    pending.reject(error);
  }

  private forget(pending: Pending): void {
    this.all.delete(pending);
    if (pending.deadline !== null) clearTimeout(pending.deadline);
    if (pending.retryTimer !== null) clearTimeout(pending.retryTimer);
    if (pending.wireId !== null) this.awaiting.delete(pending.wireId);
    pending.wireId = null;
    const queued = this.queue.indexOf(pending);
    if (queued >= 0) this.queue.splice(queued, 1);
  }
}

