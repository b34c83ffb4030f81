import { execFile, spawn } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { promisify } from 'node:util';
import { startEmbeddedPostgres } from '../src/persistence/embeddedPostgres.js';
import type { EmbeddedPostgresHandle } from '../src/persistence/embeddedPostgres.js';
import { binariesForSystemAccount, packagedBinaries } from '../src/persistence/embedded/binaries.js';

const runningAsRoot = process.getuid?.() === 0;

const repositoryRoot = fileURLToPath(new URL('..', import.meta.url));
const startAndHangScript = fileURLToPath(new URL('./support/startAndHang.ts', import.meta.url));

const temporaryDirectories: string[] = [];
const serversToStop: EmbeddedPostgresHandle[] = [];
const processesToKill: number[] = [];

async function freshDataDirectory(): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'seckill-embedded-'));
  temporaryDirectories.push(directory);
  return path.join(directory, 'data');
}

async function start(dataDirectory: string): Promise<EmbeddedPostgresHandle> {
  const server = await startEmbeddedPostgres({ dataDirectory });
  serversToStop.push(server);
  return server;
}

async function query<Row extends pg.QueryResultRow>(
  connectionString: string,
  text: string,
  values: unknown[] = [],
): Promise<Row[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function postmasterPid(dataDirectory: string): Promise<number> {
  const contents = await readFile(path.join(dataDirectory, 'postgresql', 'postmaster.pid'), 'utf8');
  return Number.parseInt(contents.split('\n')[0] ?? '', 10);
}

/** A process counts as gone once it no longer exists or is a zombie nobody reaped. */
async function processIsGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const statLine = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return statLine.slice(statLine.lastIndexOf(')') + 2).startsWith('Z');
}

afterAll(async () => {
  for (const server of serversToStop) await server.stop().catch(() => undefined);
  for (const pid of processesToKill) {
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      // Already gone, which is the expected case.
    }
  }
  for (const directory of temporaryDirectories) await rm(directory, { recursive: true, force: true });
});

describe('startEmbeddedPostgres', () => {
  it('keeps committed data across a stop and a restart on the same directory', async () => {
    const dataDirectory = await freshDataDirectory();

    const first = await start(dataDirectory);
    expect(first.connectionString).toBe(`postgres://postgres:password@127.0.0.1:${first.port}/postgres`);
    const settings = await query<Record<string, string>>(
      first.connectionString,
      `select current_setting('fsync') as fsync,
              current_setting('synchronous_commit') as synchronous_commit,
              current_setting('listen_addresses') as listen_addresses,
              current_setting('max_connections') as max_connections`,
    );
    expect(settings).toEqual([
      { fsync: 'on', synchronous_commit: 'on', listen_addresses: '127.0.0.1', max_connections: '200' },
    ]);
    await query(first.connectionString, 'create table orders (id int primary key, item text not null)');
    await query(first.connectionString, 'insert into orders values (1, $1)', ['limited sneaker']);
    await first.stop();
    await first.stop();
    await expect(readFile(path.join(dataDirectory, 'postgresql', 'postmaster.pid'))).rejects.toThrow(/ENOENT/);

    const second = await start(dataDirectory);
    expect(await query(second.connectionString, 'select id, item from orders')).toEqual([
      { id: 1, item: 'limited sneaker' },
    ]);
    await second.stop();
  });

  it('stops the server orphaned by a process killed with SIGKILL and starts on its data', async () => {
    const dataDirectory = await freshDataDirectory();
    const child = spawn(process.execPath, ['--import', 'tsx', startAndHangScript, dataDirectory], {
      cwd: repositoryRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let childErrors = '';
    child.stderr.on('data', (chunk: Buffer) => {
      childErrors += chunk.toString();
    });
    const childExited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const firstLine = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`startAndHang exited early (code ${code}): ${childErrors}`)));
    });
    const report = JSON.parse(firstLine) as { connectionString: string; pid: number };
    expect(report.pid).toBe(child.pid);

    const orphanPid = await postmasterPid(dataDirectory);
    processesToKill.push(orphanPid);
    child.kill('SIGKILL');
    await childExited;
    // The scenario only means something if the server really outlived its parent.
    expect(await processIsGone(orphanPid)).toBe(false);
    expect(await query(report.connectionString, 'select 1 as alive')).toEqual([{ alive: 1 }]);

    const restarted = await start(dataDirectory);
    expect(await processIsGone(orphanPid)).toBe(true);
    expect(await postmasterPid(dataDirectory)).not.toBe(orphanPid);
    expect(await query(restarted.connectionString, 'select note from survivors')).toEqual([
      { note: `written by pid ${report.pid}` },
    ]);
    await restarted.stop();
  });

  it('starts over a stale postmaster.pid whose process is dead', async () => {
    const dataDirectory = await freshDataDirectory();
    const first = await start(dataDirectory);
    await query(first.connectionString, 'create table marker (value int)');
    await query(first.connectionString, 'insert into marker values (42)');
    const lockFile = path.join(dataDirectory, 'postgresql', 'postmaster.pid');
    const staleContents = await readFile(lockFile, 'utf8');
    const deadPid = await postmasterPid(dataDirectory);
    await first.stop();
    expect(await processIsGone(deadPid)).toBe(true);
    await writeFile(lockFile, staleContents);

    const second = await start(dataDirectory);
    expect(await query(second.connectionString, 'select value from marker')).toEqual([{ value: 42 }]);
    await second.stop();
  });

  it('refuses a data directory whose server still belongs to a live process', async () => {
    const dataDirectory = await freshDataDirectory();
    const owner = await start(dataDirectory);
    await expect(startEmbeddedPostgres({ dataDirectory })).rejects.toThrow(
      new RegExp(`${dataDirectory}/postgresql.*is in use by a server`),
    );
    // The refused attempt must not have disturbed the running server.
    expect(await query(owner.connectionString, 'select 1 as alive')).toEqual([{ alive: 1 }]);
    await owner.stop();
  });

  it('names the data directory when it cannot start', async () => {
    const dataDirectory = await freshDataDirectory();
    await writeFile(dataDirectory, 'not a directory');
    await expect(startEmbeddedPostgres({ dataDirectory })).rejects.toThrow(
      `PostgreSQL data directory ${dataDirectory} exists but is not a directory; fix: point SECKILL_DATA_DIR at a directory`,
    );
  });

  it('runs from programs and a data directory under 0700 directories, beside files already in the data directory', async () => {
    // A checkout in /root or a `mktemp -d` directory: only its owner may enter it.
    const privateDirectory = await mkdtemp(path.join(os.tmpdir(), 'seckill-private-'));
    temporaryDirectories.push(privateDirectory);
    expect((await stat(privateDirectory)).mode & 0o777).toBe(0o700);
    const packaged = await packagedBinaries();
    const programsDirectory = path.join(privateDirectory, 'package', 'native');
    await cp(path.dirname(packaged.root), path.join(privateDirectory, 'package'), { recursive: true, verbatimSymlinks: true });
    // A mounted volume is rarely empty.
    const dataDirectory = path.join(privateDirectory, 'volume');
    await mkdir(path.join(dataDirectory, 'lost+found'), { recursive: true });
    await writeFile(path.join(dataDirectory, 'operator.log'), 'kept\n');

    const server = await startEmbeddedPostgres({ dataDirectory, programsDirectory });
    serversToStop.push(server);
    expect(server.clusterDirectory).toBe(path.join(await realpath(dataDirectory), 'postgresql'));
    expect(await query(server.connectionString, 'select 1 as alive')).toEqual([{ alive: 1 }]);
    await server.stop();

    // Nothing was opened up: the private directory is still the owner's alone, the files stay.
    expect((await stat(privateDirectory)).mode & 0o777).toBe(0o700);
    expect((await readdir(dataDirectory)).sort()).toEqual(['lost+found', 'operator.log', 'postgresql']);
    expect(await readFile(path.join(dataDirectory, 'operator.log'), 'utf8')).toBe('kept\n');
  });

  it('names the program and the fix, in one line, when the PostgreSQL programs cannot be run', async () => {
    const programsDirectory = path.join(path.dirname(await freshDataDirectory()), 'broken');
    await mkdir(path.join(programsDirectory, 'bin'), { recursive: true });
    for (const program of ['initdb', 'postgres']) {
      await writeFile(path.join(programsDirectory, 'bin', program), '#!/bin/sh\n');
      await chmod(path.join(programsDirectory, 'bin', program), 0o644);
    }
    const failure = await startEmbeddedPostgres({ dataDirectory: await freshDataDirectory(), programsDirectory }).catch(
      (error: unknown) => error as Error,
    );
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(
      new RegExp(`the PostgreSQL program ${programsDirectory}/bin/initdb cannot be run \\(.*\\); fix: `),
    );
    expect((failure as Error).message).not.toContain('\n');
  });

  it('names the directory and the fix, in one line, when the data directory cannot be used', async () => {
    const parentFile = path.join(path.dirname(await freshDataDirectory()), 'a-file');
    await writeFile(parentFile, 'not a directory');
    const failure = await startEmbeddedPostgres({ dataDirectory: path.join(parentFile, 'data') }).catch(
      (error: unknown) => error as Error,
    );
    expect((failure as Error).message).toMatch(
      new RegExp(`^could not create the data directory ${parentFile}/data: .*; fix: create it or point SECKILL_DATA_DIR at a writable directory$`),
    );

    const blockedCluster = await freshDataDirectory();
    await mkdir(blockedCluster);
    await writeFile(path.join(blockedCluster, 'postgresql'), 'in the way');
    await expect(startEmbeddedPostgres({ dataDirectory: blockedCluster })).rejects.toThrow(
      `${blockedCluster}/postgresql exists but is not a directory; fix: move it aside`,
    );
  });

  it.skipIf(!runningAsRoot)('as root, copies the programs once to a directory the postgres account can run them from', async () => {
    const temporaryDirectory = path.dirname(await freshDataDirectory());
    // Like /var/cache, the test's stand-in must be open for the account to enter.
    await chmod(temporaryDirectory, 0o755);
    const sharedDirectory = path.join(temporaryDirectory, 'shared');
    const notes: string[] = [];
    const packaged = await packagedBinaries();
    const first = await binariesForSystemAccount(packaged, (line) => notes.push(line), sharedDirectory);
    const second = await binariesForSystemAccount(packaged, (line) => notes.push(line), sharedDirectory);
    expect(second.root).toBe(first.root);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/^Copied the PostgreSQL programs to .* where the "postgres" account can run them\.$/);
    const postgresAccount = Number((await promisify(execFile)('id', ['-u', 'postgres'])).stdout.trim());
    const { stdout } = await promisify(execFile)(first.postgres, ['--version'], { uid: postgresAccount });
    expect(stdout).toMatch(/^postgres \(PostgreSQL\) \d+/);
    const packagedVersion = JSON.parse(await readFile(path.join(packaged.root, '..', 'package.json'), 'utf8')) as { version: string };
    expect(path.basename(first.root)).toBe(`postgresql-${os.platform()}-${os.arch()}-${packagedVersion.version}`);
  });
});

