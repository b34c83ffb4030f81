/**
 * Helper process for test/embeddedPostgres.int.test.ts: starts embedded
 * PostgreSQL on the data directory given as the first argument, writes a row
 * identifying itself, prints one JSON line and then waits forever, so the test
 * can kill it with SIGKILL and leave the server orphaned.
 */
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/persistence/embeddedPostgres.js';

const dataDirectory = process.argv[2];
if (dataDirectory === undefined) {
  console.error('usage: startAndHang.ts <data directory>');
  process.exit(64);
}

const server = await startEmbeddedPostgres({ dataDirectory });
const client = new pg.Client({ connectionString: server.connectionString });
await client.connect();
await client.query('create table if not exists survivors (note text not null)');
await client.query('insert into survivors (note) values ($1)', [`written by pid ${process.pid}`]);
await client.end();

console.log(JSON.stringify({ connectionString: server.connectionString, pid: process.pid }));
setInterval(() => undefined, 60_000);
