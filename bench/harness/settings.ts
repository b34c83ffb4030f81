/**
 * The settings of one `npm run bench`, read once by the orchestrator from the environment and
 * handed to every contender's child process as JSON, so all of them run under the same figures.
 *
 *   BENCH_SECONDS            measured window of the closed loop (maximum throughput), per contender
 *   BENCH_LATENCY_SECONDS    measured window of the open loop (latency at half the maximum)
 *   BENCH_WARMUP_SECONDS     warm-up before each closed loop, not measured
 *   BENCH_IN_FLIGHT          buyers in flight against the in-process engine
 *   BENCH_CONNECTIONS        WebSocket connections held against the server (one user each)
 *   BENCH_BASELINE_CLIENTS   clients of the one-transaction-per-order baseline, e.g. 16,64
 *   BENCH_REDIS_CLIENTS      Redis connections, one request in flight each (redis-benchmark -c)
 *   BENCH_SELLOUT_STOCK      the stock of the item every contender sells out, to check oversell
 *   BENCH_DECIDER_BUYERS     distinct buyers the pure decider cycles through
 *   BENCH_FLOOR_EVENTS       events per row of the durable floor
 *   BENCH_ROUNDS             rounds of every contender, alternated, to show the run's own noise (default 1)
 *   BENCH_CONTENDERS         a comma-separated subset of the contender names (default: all)
 *   BENCH_RESULTS_DIR        where the JSON and Markdown reports go (default bench/results)
 *   BENCH_QUICK=1            a smoke run: one-second windows and small loads; figures are not comparable
 *   BENCH_NOTE               a sentence the report shows as it is: conditions no command sees
 *                            ("taken with four other engineers' work on the machine")
 */
export interface BenchSettings {
  readonly quick: boolean;
  readonly warmupSeconds: number;
  readonly seconds: number;
  readonly latencySeconds: number;
  readonly engineInFlight: number;
  readonly connections: number;
  readonly baselineClients: readonly number[];
  readonly redisClients: number;
  readonly sellOutStock: number;
  readonly deciderBuyers: number;
  readonly floorEventsPerBatch: number;
  readonly rounds: number;
  readonly contenders: readonly string[] | null;
  readonly resultsDirectory: string;
}

function positiveIntegers(environment: NodeJS.ProcessEnv, name: string, fallback: readonly number[]): number[] {
  const raw = environment[name]?.trim();
  if (raw === undefined || raw === '') return [...fallback];
  return raw.split(',').map((part) => {
    const value = Number(part.trim());
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer or a comma-separated list of them, got ${raw}`);
    return value;
  });
}

function positiveInteger(environment: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const values = positiveIntegers(environment, name, [fallback]);
  if (values.length !== 1) throw new Error(`${name} must be one positive integer, got ${environment[name]}`);
  return values[0]!;
}

/** Reads the settings; `environment` is a parameter so that tests can pass their own. */
export function readSettings(environment: NodeJS.ProcessEnv): BenchSettings {
  const quick = environment.BENCH_QUICK === '1';
  const read = (name: string, fallback: number, quickFallback = fallback): number =>
    positiveInteger(environment, name, quick ? quickFallback : fallback);
  const contenders = environment.BENCH_CONTENDERS?.trim();
  return {
    quick,
    warmupSeconds: read('BENCH_WARMUP_SECONDS', 1),
    seconds: read('BENCH_SECONDS', 5, 1),
    latencySeconds: read('BENCH_LATENCY_SECONDS', 5, 1),
    engineInFlight: read('BENCH_IN_FLIGHT', 20_000, 2_000),
    connections: read('BENCH_CONNECTIONS', 2_000, 200),
    baselineClients: positiveIntegers(environment, 'BENCH_BASELINE_CLIENTS', [16, 64]),
    redisClients: read('BENCH_REDIS_CLIENTS', 50),
    sellOutStock: read('BENCH_SELLOUT_STOCK', 5_000, 500),
    deciderBuyers: read('BENCH_DECIDER_BUYERS', 500_000, 50_000),
    floorEventsPerBatch: read('BENCH_FLOOR_EVENTS', 10_000),
    rounds: read('BENCH_ROUNDS', 1),
    contenders: contenders === undefined || contenders === '' ? null : contenders.split(',').map((name) => name.trim()),
    resultsDirectory: environment.BENCH_RESULTS_DIR ?? 'bench/results',
  };
}
