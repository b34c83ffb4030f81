/**
 * `seckill replay`: the user's tool to prove, on their own data, that nothing was oversold or
 * lost. Arguments are parsed by `node:util`'s parseArgs; output is for people by default and
 * JSON with `--json`; a progress bar (cli-progress) shows on a terminal. Exit codes: 0 when
 * everything holds, 1 when something does not, 2 for a bad command line or an error.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import cliProgress from 'cli-progress';
import { takeEngineLock } from '../persistence/engineLock.js';
import type { Until } from './fold.js';
import { openDatabases, type Databases } from './databases.js';
import { emptyReconciliation, reconcilePage, sortReconciliation } from './reconcile.js';
import { fileSource, databaseSource, type JournalSource } from './sources.js';
import { exportJournals, importJournals } from './transfer.js';
import { checkProjections, foldSource, type ReplayOutcome } from './verify.js';
import { printOutcome } from './output.js';

export class UsageError extends Error {}

const help: Record<string, string> = {
  replay: `usage: seckill replay [options]

Folds every journal with the engine's own evolve and reports, per item and slice: stock,
available, reserved, sold, transfers, open, expired and cancelled reservations, cancelled orders.
Reads the databases the server is configured with (DATABASE_URL, SECKILL_INVENTORY_DATABASE_URLS,
or the embedded PostgreSQL in SECKILL_DATA_DIR; the order databases likewise), or an export file.

options:
  --verify                 check every invariant: no oversell at any point, per-user limits,
                           conservation across slices and transfers, every transfer matched,
                           and (databases only) stock rows, snapshots and every order exactly
                           once in the buyer and in the seller tables; exit 1 on any violation
  --until TIME|SEQUENCE    the state as of a moment (an ISO 8601 date, or milliseconds since
                           the epoch) or of a sequence number in each slice (a number below 10^11)
  --rebuild-projections    rewrite the stock rows, snapshots and order tables that disagree with
                           the journals; idempotent; refused while an engine runs on the databases
  --repair                 the same as --rebuild-projections
  --file PATH              read an export file instead of the databases
  --json                   one JSON object on stdout instead of the report for people
  --no-progress            no progress bar (there is none when stderr is not a terminal)
  -h, --help               this text

commands:
  seckill replay export PATH      write every item and event to PATH as NDJSON
  seckill replay import PATH      write the items and journals of PATH into the databases
  seckill replay reconcile        expired reservations and cancelled orders of an item over time
`,
  export: `usage: seckill replay export PATH [--json] [--no-progress]

Writes every item and every journal event of the configured databases to PATH, one JSON object
per line: {"type":"item",…} lines first, then {"type":"event","itemId","sliceIndex","sliceId",
"databaseIndex","sequence","event"} lines, each slice's events in sequence order.
`,
  import: `usage: seckill replay import PATH [--json] [--no-progress]

Writes the items and journals of an export file into the configured databases, which must not
hold those items yet and must not have an engine running on them. The stock rows come out as
the journals fold them, and the buyer and seller order tables are written from the journals;
run \`seckill replay --verify\` afterwards.
`,
  reconcile: `usage: seckill replay reconcile --item ID [--from TIME] [--to TIME] [--json] [--file PATH]

Lists the item's reservations that expired or were cancelled, and its orders an administrator
cancelled, decided in [--from, --to) (ISO 8601 dates or milliseconds; default: all time),
oldest first, with slice, sequence, time, user, quantity and id.
`,
};

const options = {
  verify: { type: 'boolean' },
  until: { type: 'string' },
  'rebuild-projections': { type: 'boolean' },
  repair: { type: 'boolean' },
  file: { type: 'string' },
  json: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  item: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
} satisfies ParseArgsConfig['options'];

/** A moment: an ISO 8601 date, or milliseconds since the epoch. */
export function parseMoment(text: string, option: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(value)) throw new UsageError(`${option} ${JSON.stringify(text)} is neither a date (ISO 8601) nor milliseconds since the epoch`);
  return value;
}

export function parseUntil(text: string | undefined): Until {
  if (text === undefined) return null;
  if (/^\d+$/.test(text) && Number(text) < 1e11) return { sequence: Number(text) };
  return { atMs: parseMoment(text, '--until') };
}

function progressBar(enabled: boolean, total: number, what: string): { update(done: number): void; stop(): void } {
  if (!enabled || total === 0) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: `${what} [{bar}] {percentage}% | {value}/{total} events | {eta_formatted} left`, etaBuffer: 50, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (done) => bar.update(Math.min(done, total)), stop: () => bar.stop() };
}

export async function runReplay(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  const command = first === 'export' || first === 'import' || first === 'reconcile' ? first : 'replay';
  const parsed = parseArgs({ args: command === 'replay' ? [...argv] : rest, options, allowPositionals: command === 'export' || command === 'import', strict: true });
  const values = parsed.values;
  if (values.help === true) {
    process.stdout.write(help[command]!);
    return 0;
  }
  const json = values.json === true;
  const showProgress = values['no-progress'] !== true && !json && process.stderr.isTTY === true;

  if (command === 'export' || command === 'import') {
    const path = parsed.positionals[0];
    if (path === undefined || parsed.positionals.length > 1) throw new UsageError(`\`seckill replay ${command}\` takes one PATH`);
    const databases = await openDatabases();
    try {
      if (command === 'export') {
        const source = databaseSource(databases.inventory, databases.description);
        const bar = progressBar(showProgress, await source.eventCount(), 'export');
        const written = await exportJournals(source, path, (done) => bar.update(done));
        bar.stop();
        report(json, { command, path, ...written }, `${written.items} items and ${written.events} events written to ${path}`);
      } else {
        await refuseWhileEngineRuns(databases);
        const source = fileSource(path);
        const bar = progressBar(showProgress, await source.eventCount(), 'import');
        const read = await importJournals(source, databases.inventory, (done) => bar.update(done));
        bar.stop();
        // The order tables are projections of the journals: written from them here, as the
        // engine's projector would have.
        await checkProjections(databases.inventory, databases.orders, true);
        report(json, { command, path, ...read }, `${read.items} items and ${read.events} events imported from ${path}; run \`seckill replay --verify\``);
      }
      return 0;
    } finally {
      await databases.close();
    }
  }

  if (command === 'reconcile') {
    if (values.item === undefined) throw new UsageError('`seckill replay reconcile` needs --item ID');
    const fromMs = values.from === undefined ? 0 : parseMoment(values.from, '--from');
    const toMs = values.to === undefined ? Number.MAX_SAFE_INTEGER : parseMoment(values.to, '--to');
    const databases = values.file === undefined ? await openDatabases() : null;
    try {
      const source = databases === null ? fileSource(values.file!) : databaseSource(databases.inventory, databases.description);
      const reconciliation = emptyReconciliation(values.item, fromMs, toMs);
      for await (const { slice, events } of source.pages()) if (slice.itemId === values.item) reconcilePage(reconciliation, slice.sliceIndex, events);
      sortReconciliation(reconciliation);
      const lines = [
        `item ${values.item}, from ${new Date(fromMs).toISOString()} to ${toMs === Number.MAX_SAFE_INTEGER ? 'now' : new Date(toMs).toISOString()}:`,
        ...(
          [
            ['expired reservations', reconciliation.expiredReservations],
            ['cancelled reservations', reconciliation.cancelledReservations],
            ['cancelled orders', reconciliation.cancelledOrders],
          ] as const
        ).flatMap(([title, entries]) => [
          `  ${title}: ${entries.length} (${entries.reduce((sum, entry) => sum + entry.quantity, 0)} units)`,
          ...entries.map((entry) => `    ${new Date(entry.atMs).toISOString()}  ${entry.id}  user ${entry.userId}  qty ${entry.quantity}  slice ${entry.sliceIndex} seq ${entry.sequence}`),
        ]),
      ];
      report(json, reconciliation, lines.join('\n'));
      return 0;
    } finally {
      await databases?.close();
    }
  }

  if (parsed.positionals.length > 0) throw new UsageError(`unknown argument ${JSON.stringify(parsed.positionals[0])}`);
  const until = parseUntil(values.until);
  const rebuild = values['rebuild-projections'] === true || values.repair === true;
  if (values.file !== undefined && rebuild) throw new UsageError('--rebuild-projections writes to the databases; it cannot take --file');
  if (until !== null && rebuild) throw new UsageError('--rebuild-projections rebuilds from the whole journal; it cannot take --until');
  const databases = values.file === undefined ? await openDatabases() : null;
  try {
    const source: JournalSource = databases === null ? fileSource(values.file!) : databaseSource(databases.inventory, databases.description);
    const bar = progressBar(showProgress, await source.eventCount(), 'replay');
    const outcome = await foldSource(source, until, (done) => bar.update(done));
    bar.stop();
    let violations = [...outcome.violations];
    let rebuilt = 0;
    if (databases !== null && (values.verify === true || rebuild) && until === null) {
      if (rebuild) await refuseWhileEngineRuns(databases);
      const projections = await checkProjections(databases.inventory, databases.orders, rebuild);
      violations = [...violations, ...projections.violations];
      rebuilt = projections.rebuilt;
    }
    const result: ReplayOutcome & { verified: boolean; rebuiltSlices: number } = { ...outcome, violations, verified: values.verify === true, rebuiltSlices: rebuilt };
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else printOutcome(result);
    return values.verify === true && violations.length > 0 ? 1 : 0;
  } finally {
    await databases?.close();
  }
}

function report(json: boolean, value: object, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

/** Rewriting projections under a running engine would race its own writes. */
async function refuseWhileEngineRuns(databases: Databases): Promise<void> {
  const lock = await takeEngineLock(databases.urls, () => undefined).catch((error: unknown) => {
    throw new UsageError(`an engine is running on these databases (${(error as Error).message}); stop it first`);
  });
  await lock.release();
}
