/**
 * Child process for test/orderProjection.int.test.ts: opens the engine on the two inventory
 * databases given as the first arguments, buys the item given as the third with many concurrent
 * buyers, and kills itself with SIGKILL inside a projection batch: once order database 1 has
 * written the rows of its `killAtBatch`-th batch (fourth argument) and before that batch commits. By then order
 * database 0 has committed batches that order database 1 has not, and the journal holds orders
 * neither has taken in. Every acknowledged order is printed as `order <id>`.
 */
import { createEngine } from '../../src/engine.js';

const [databaseUrl, inventoryUrl, itemId, killAtBatchText] = process.argv.slice(2);
if (databaseUrl === undefined || inventoryUrl === undefined || itemId === undefined || killAtBatchText === undefined) {
  console.error('usage: projectUntilKilled.ts <database url> <second inventory database url> <item id> <kill at batch>');
  process.exit(64);
}
const killAtBatch = Number(killAtBatchText);
let batches = 0;

const engine = await createEngine({
  databaseUrl,
  extraInventoryDatabaseUrls: [inventoryUrl],
  beforeProjectionCommit: async (orderDatabaseIndex) => {
    if (orderDatabaseIndex !== 1 || ++batches < killAtBatch) return;
    process.stdout.write('killing\n', () => process.kill(process.pid, 'SIGKILL'));
    // The transaction stays open, its rows written and not committed, until the process dies.
    await new Promise(() => undefined);
  },
});
let nextUser = 1;
console.log('ready');
for (;;) {
  await Promise.all(
    Array.from({ length: 200 }, () =>
      engine.buy({ userId: String(nextUser++) }, { itemId, quantity: 1 }).then((result) => {
        if (result.ok) process.stdout.write(`order ${result.orderId}\n`);
      }),
    ),
  );
}
