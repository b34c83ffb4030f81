/**
 * The real server (`dist/src/cli.js serve`, as `npm start` runs it) as a child process of a
 * benchmark, so that its own CPU and memory can be read from /proc: on a PostgreSQL the
 * benchmark gives, or on an embedded one in a directory of the benchmark's. The limits per
 * user and per connection are lifted, and no exit path of the benchmark leaves it behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

export interface ServerChildOptions {
  readonly projectDirectory: string;
  /** V8 flags for the server's node (`startScriptFlags` gives npm start's). */
  readonly nodeFlags: readonly string[];
  /** A PostgreSQL database's URL, or a directory for an embedded PostgreSQL's files (SECKILL_DATA_DIR). */
  readonly database: { readonly url: string } | { readonly dataDirectory: string };
  readonly jwtSecret: string;
  readonly adminToken: string;
  readonly connectionsMax: number;
  /** Adds to or overrides the server's environment (SECKILL_REHEARSAL_BUYERS, say). */
  readonly environment?: Readonly<Record<string, string>>;
  /** Prints which uWebSockets.js serves (native or the `ws` shim), for a report. */
  readonly announceImplementation?: boolean;
}

export interface ServerChild {
  readonly process: ChildProcess;
  readonly port: number;
  readonly exited: Promise<number | null>;
}

/** The server children that run. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGTERM');
});

/** The server children that run, for a benchmark that must stop them on its way out. */
export function runningServerChildren(): ChildProcess[] {
  return [...running];
}

/** Starts the server and resolves once it listens, with its port; rejects if it exits or takes over 120 s. */
export async function startServerChild(options: ServerChildOptions): Promise<ServerChild> {
  const child = spawn(process.execPath, [...options.nodeFlags, path.join(options.projectDirectory, 'dist', 'src', 'cli.js'), 'serve'], {
    cwd: options.projectDirectory,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      ...('url' in options.database ? { DATABASE_URL: options.database.url } : { DATABASE_URL: '', SECKILL_DATA_DIR: options.database.dataDirectory }),
      SECKILL_JWT_SECRET: options.jwtSecret,
      SECKILL_ADMIN_TOKEN: options.adminToken,
      SECKILL_LOG_LEVEL: 'info',
      // One machine hammering one item: the per-user and per-connection limits protect a real
      // sale and would only measure themselves here.
      SECKILL_USER_REQUESTS_PER_SECOND: '1000000',
      SECKILL_USER_BURST_REQUESTS: '1000000',
      SECKILL_CONNECTION_REQUESTS_PER_SECOND: '1000000',
      SECKILL_CONNECTION_BURST_REQUESTS: '1000000',
      SECKILL_CONNECTIONS_MAX: String(options.connectionsMax),
      ...options.environment,
    },
  });
  running.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start within 120 s')), 120_000);
    void exited.then((code) => reject(new Error(`the server exited with ${code} before listening`)));
    lines.on('line', (line) => {
      let entry: { msg?: string; port?: number; level?: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if ((entry.level ?? 0) >= 40) console.error(`server: ${entry.msg}`);
      else if (options.announceImplementation === true && entry.msg?.startsWith('uWebSockets.js implementation')) console.log(`server: ${entry.msg}`);
      if (entry.msg?.startsWith('listening on') && entry.port !== undefined) {
        clearTimeout(timer);
        resolve(entry.port);
      }
    });
  });
  return { process: child, port, exited };
}
