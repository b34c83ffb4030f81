/**
 * Child process for test/crash.int.test.ts: opens the engine on the database given as the first
 * argument and buys the item given as the second, in waves of concurrent buyers, forever.
 * Every acknowledged order is printed as `order <id>` the moment its promise resolves, so the
 * parent knows exactly what was acknowledged when it kills this process with SIGKILL.
 */
import { createEngine } from '../../src/engine.js';

const [databaseUrl, itemId] = process.argv.slice(2);
if (databaseUrl === undefined || itemId === undefined) {
  console.error('usage: buyUntilKilled.ts <database url> <item id>');
  process.exit(64);
}

const engine = await createEngine({ databaseUrl, snapshotEvery: 500 });
const waveSize = 200;
let nextUser = 1;
console.log('ready');
for (;;) {
  await Promise.all(
    Array.from({ length: waveSize }, () =>
      engine.buy({ userId: String(nextUser++) }, { itemId, quantity: 1 }).then((result) => {
        if (result.ok) process.stdout.write(`order ${result.orderId}\n`);
      }),
    ),
  );
}
