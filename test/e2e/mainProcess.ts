/**
 * The real entry point, `src/main.ts`, as a child process whose JSON log lines a test can wait
 * for. Every child still running when the test file ends is killed with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll } from 'vitest';

export const projectDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsxLoader = pathToFileURL(path.join(projectDirectory, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const running = new Set<ChildProcess>();

afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
});

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export class MainProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];

  constructor(readonly child: ChildProcess) {
    running.add(child);
    // 'exit' can come before the last lines on stdout were read: the exit is reported once the
    // streams are closed too ('close'), or 2 s after it if a grandchild still holds them.
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        running.delete(child);
        const reported = (): void => resolve({ code, signal });
        child.once('close', reported);
        setTimeout(reported, 2_000).unref();
      }),
    );
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        return;
      }
      this.lines.push(line);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.predicate(line)) return true;
        waiter.resolve(line);
        return false;
      });
    });
  }

  /**
   * Starts `src/main.ts`. With `processGroup`, it leads a process group of its own, as a
   * program started from a terminal does, so that `interruptGroup` can stand in for Ctrl-C.
   */
  static start(environment: Record<string, string>, workingDirectory = projectDirectory, processGroup = false): MainProcess {
    // tsx by its own path, since `--import` resolves from the working directory.
    const child = spawn(process.execPath, ['--import', tsxLoader, path.join(projectDirectory, 'src/main.ts')], {
      cwd: workingDirectory,
      // No rehearsal of a sale at start (2 s or more under tsx) unless a test asks for one:
      // test/rehearsal.e2e.test.ts tests it.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', SECKILL_REHEARSAL_BUYERS: '0', ...environment },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: processGroup,
    });
    return new MainProcess(child);
  }

  /** SIGINT to the whole process group, as a terminal sends on Ctrl-C. */
  interruptGroup(): void {
    process.kill(-this.child.pid!, 'SIGINT');
  }

  waitForLine(predicate: (line: LogLine) => boolean, timeoutMs = 60_000): Promise<LogLine> {
    const found = this.lines.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no such log line within ${timeoutMs} ms; stderr: ${this.stderr}`)),
        timeoutMs,
      );
      void this.exited.then(({ code }) => reject(new Error(`exited with ${code} first; stderr: ${this.stderr}`)));
      this.waiters.push({
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  /** Waits for the server to listen and returns its port. */
  async listening(): Promise<number> {
    const line = await this.waitForLine((entry) => entry.msg.startsWith('listening on'));
    return line.port as number;
  }
}

export async function eventuallyTrue(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
