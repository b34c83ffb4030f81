/**
 * The life of a PostgreSQL process this engine started: its output line by line, a stop that
 * is clean when it can be and certain when it cannot, and a last stop when this process exits.
 */
import type { ChildProcess } from 'node:child_process';

const gracefulShutdownMilliseconds = 60_000;
const immediateShutdownMilliseconds = 10_000;

/** Servers started by this process that have not been stopped yet. */
const runningServers = new Set<ChildProcess>();
let exitListenerInstalled = false;

/**
 * Watches a started server and builds its idempotent stop function. The process-wide `exit`
 * listener sends SIGINT to every server still running, so a program that calls process.exit()
 * does not leave a postgres behind.
 */
export function trackServer(child: ChildProcess, clusterDirectory: string, log: (line: string) => void): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  runningServers.add(child);
  installExitListener();
  child.once('exit', (code, signal) => {
    runningServers.delete(child);
    if (stopping === undefined) {
      log(`PostgreSQL for ${clusterDirectory} exited unexpectedly (code ${code ?? 'none'}, signal ${signal ?? 'none'}).`);
    }
  });
  return () => {
    stopping ??= (async () => {
      if (isRunning(child)) await shutDownChild(child);
      runningServers.delete(child);
    })();
    return stopping;
  };
}

function installExitListener(): void {
  if (exitListenerInstalled) return;
  exitListenerInstalled = true;
  process.on('exit', () => {
    for (const child of runningServers) {
      // SIGINT asks the postmaster for a fast shutdown; it finishes on its own after we are gone.
      child.kill('SIGINT');
    }
  });
}

/**
 * Fast shutdown (SIGINT) rolls back open transactions and writes a checkpoint. If that hangs,
 * immediate shutdown (SIGQUIT) is still safe for the data because every committed transaction
 * is already in the fsynced WAL.
 */
export async function shutDownChild(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => {
    if (!isRunning(child)) resolve();
    child.once('exit', () => resolve());
  });
  child.kill('SIGINT');
  if (await settlesWithin(exited, gracefulShutdownMilliseconds)) return;
  child.kill('SIGQUIT');
  if (await settlesWithin(exited, immediateShutdownMilliseconds)) return;
  throw new Error(`PostgreSQL (pid ${child.pid ?? 'unknown'}) did not shut down after SIGINT and SIGQUIT.`);
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function settlesWithin(promise: Promise<void>, milliseconds: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), milliseconds);
  });
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends each line of the child's stdout and stderr (PostgreSQL logs to stderr) to `onLine`. */
export function collectLines(child: ChildProcess, onLine: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split(/\r?\n/);
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') onLine(line);
    });
  }
}
