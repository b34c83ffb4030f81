/**
 * Every error class the engine throws. Business outcomes are never errors (they are
 * `Rejection` values, see src/domain/reasons.ts); these are for broken infrastructure, bad
 * configuration and bugs.
 */

/** Storage could not take a write: the flush holding it failed, or its slice is recovering. Nothing changed. */
export class StorageUnavailableError extends Error {
  override readonly name = 'StorageUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Whether a change committed is not known, and can no longer be found out by this engine: it
 * was closed while a flush was in doubt (its connection lost, the database out of reach). The
 * change may have committed. Never answered as `unavailable`, which promises that nothing
 * changed: a client that retries with the same idempotency key learns the outcome.
 */
export class OutcomeUnknownError extends Error {
  override readonly name = 'OutcomeUnknownError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A configuration value is missing or malformed; the message names the variable. */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

/** The engine was used after `close()`. */
export class EngineClosedError extends Error {
  override readonly name = 'EngineClosedError';
  constructor() {
    super('the engine is closed');
  }
}

/**
 * The engine cannot start: a program, a directory or a database it needs is missing or out of
 * reach. The message is one line that names what and where, and ends with the fix.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  /** What a program printed before it failed (PostgreSQL's last lines), for whoever reads further. */
  readonly detail: string | undefined;
  constructor(message: string, options?: { cause?: unknown; detail?: string }) {
    super(message, options);
    this.detail = options?.detail === '' ? undefined : options?.detail;
  }
}
