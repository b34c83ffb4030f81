/**
 * The orchestrator's side of a contender: one child process per contender (as pino runs each
 * benchmark), which receives the run's settings as its argument and answers with one report
 * over the IPC channel. A child that fails, or does not report in time, becomes a report that
 * says so, and the run goes on with the next contender.
 */
import { spawn } from 'node:child_process';
import type { FromContender } from './child.js';
import type { ContenderReport } from './result.js';
import type { BenchSettings } from './settings.js';

/** A contender that has not reported by then is stopped and reported as failed. */
const contenderSecondsMax = 600;

export interface ContenderEntry {
  readonly name: string;
  readonly title: string;
  /** The contender's module: a path, or a file name under bench/contenders in run.ts's list. */
  readonly file: string;
  /** An argument after the settings that picks a variant of the contender (clients, durability). */
  readonly variant?: string;
  readonly needsRedis?: boolean;
}

export function runContender(
  entry: ContenderEntry,
  settings: BenchSettings,
  nodeFlags: readonly string[],
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<ContenderReport> {
  const child = spawn(process.execPath, [...nodeFlags, entry.file, JSON.stringify(settings), ...(entry.variant === undefined ? [] : [entry.variant])], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve) => {
    let message: FromContender | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), contenderSecondsMax * 1000);
    child.on('message', (received: FromContender) => {
      message = received;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (message?.kind === 'report') return resolve(message.report);
      const why = message?.kind === 'error' ? message.message : `it exited with ${signal ?? code} before reporting`;
      if (message?.kind === 'error') console.error(`${entry.name}: ${message.message}`);
      resolve({ name: entry.name, title: entry.title, skipped: `failed: ${why.split('\n')[0]}` });
    });
  });
}
