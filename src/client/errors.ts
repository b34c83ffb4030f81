/**
 * The client's errors. A business "no" (sold out, limit exceeded, ...) is never one of these:
 * it is a `Rejected` value. These say that the client could not get an answer, and each says
 * what is known about the request's effect, so the caller never has to guess.
 */
import type { RequestType } from './messages.js';

export type Unanswered = 'timeout' | 'connection_lost' | 'client_closed';

/**
 * The request was sent and may have taken effect, but its answer cannot be learned: the
 * connection dropped (or the time ran out) after it left, and asking again could not tell. Show
 * the buyer their orders (`client.orders()`) rather than assume either way.
 */
export class OutcomeUnknownError extends Error {
  override readonly name = 'OutcomeUnknownError';
  constructor(
    readonly requestType: RequestType,
    readonly why: Unanswered,
  ) {
    super(`the ${requestType} request was sent but its outcome is unknown (${why.replace('_', ' ')}); it may or may not have taken effect`);
  }
}

/**
 * No answer came in time, and nothing that matters happened: either the request never left the
 * client, or it changes nothing on the server (subscribe, unsubscribe, challenge, orders).
 */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
  constructor(
    readonly requestType: RequestType,
    readonly timeoutMs: number,
  ) {
    super(`no answer to ${requestType} within ${timeoutMs} ms; it did not take effect`);
  }
}

/** `close()` was called before the request could be sent or answered; it did not take effect. */
export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError';
  constructor(readonly requestType: RequestType) {
    super(`the client was closed before the ${requestType} request was answered; it did not take effect`);
  }
}

/** More than `queuedRequestsMax` requests wait for a connection; this one was not sent. */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  constructor(
    readonly requestType: RequestType,
    readonly queuedRequestsMax: number,
  ) {
    super(`${queuedRequestsMax} requests already wait for a connection; the ${requestType} request was not sent`);
  }
}
