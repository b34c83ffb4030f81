#!/usr/bin/env node
/**
 * The `seckill` command, the production entry point: `seckill serve` is the server process
 * itself, not a child of a package manager, so a process manager's or a container runtime's
 * SIGTERM reaches the process that drains, commits and closes (see src/main.ts). `npm start`
 * wraps node in npm, which a supervisor may signal without node ever hearing of it.
 *
 * Everything else is configured by environment variables (src/config.ts), as the wire
 * contract says; the command line only chooses what to run.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from './packageRoot.js';

/** Exit code of a command line that names no known command, as for a bad configuration. */
const usageExitCode = 2;

const usage = `usage: seckill <command>

commands:
  serve              run the HTTP + WebSocket server (configured by environment variables:
                     PORT, HOST, DATABASE_URL, SECKILL_DATA_DIR, SECKILL_JWT_SECRET, …)
  replay [options]   fold the journals and report every item and slice; --verify checks
                     every invariant, --until, --rebuild-projections, --file, --json;
                     \`seckill replay export|import PATH\`, \`seckill replay reconcile\`;
                     \`seckill replay --help\` for the details
  version            print the version
  help               print this text

See the README's "Running in production" and docs/PROTOCOL.md.
`;

function refuse(problem: string): never {
  process.stderr.write(`seckill: ${problem}; fix: run \`seckill help\` for the commands\n`);
  process.exit(usageExitCode);
}

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'serve':
    if (rest.length > 0) refuse(`\`seckill serve\` takes no arguments, got ${JSON.stringify(rest.join(' '))}; it reads its settings from the environment`);
    await import('./main.js');
    break;
  case 'replay': {
    const { runReplay, UsageError } = await import('./replay/command.js');
    let code: number;
    try {
      code = await runReplay(rest);
    } catch (error) {
      // parseArgs's own errors name the option; ours name the fix.
      const usage = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
      process.stderr.write(`seckill replay: ${(error as Error).message}${usage ? '; fix: run `seckill replay --help`' : ''}\n`);
      code = usage ? usageExitCode : 2;
    }
    process.exit(code);
  }
  case 'version':
  case '--version': {
    const manifest = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`${manifest.version}\n`);
    break;
  }
  case 'help':
  case '--help':
  case '-h':
    process.stdout.write(usage);
    break;
  case undefined:
    process.stderr.write(usage);
    process.exit(usageExitCode);
    break;
  default:
    refuse(`unknown command ${JSON.stringify(command)}`);
}
