/**
 * `npm run simulate`: runs seeds of the deterministic simulation and prints what they did.
 *
 *   npm run simulate -- --seed 42            # one seed, exactly as before; its trace if it fails
 *   npm run simulate -- --seeds 1000         # seeds 1..1000; seeds/s, steps, faults injected
 *   npm run simulate -- --seeds 200 --first 5000 --steps 500
 */
import { parseArgs } from 'node:util';
import { simulate, type SimulationResult } from './simulate.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    first: { type: 'string' },
    steps: { type: 'string' },
    trace: { type: 'boolean' },
  },
});
const number = (text: string | undefined, fallback: number): number => {
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`not a number: ${text}`);
  return value;
};
const steps = number(values.steps, 300);

/**
 * Shrinks a failing run: the fewest workload steps with which the same seed still breaks a
 * promise. A run of fewer steps makes the same choices up to its end (the seed's sequence is
 * the same), then settles and recovers, so its failure is the same kind of run, shorter.
 */
async function shrink(result: SimulationResult): Promise<SimulationResult> {
  let failing = result;
  let low = 1;
  let high = steps;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const attempt = await simulate({ seed: result.seed, steps: middle });
    if (attempt.violation === null) low = middle + 1;
    else {
      high = middle;
      failing = attempt;
    }
  }
  return { ...failing, steps: high };
}

async function printFailure(found: SimulationResult): Promise<void> {
  const result = await shrink(found);
  const violation = result.violation!;
  console.log(`seed ${result.seed} FAILED: ${violation.invariant}: ${violation.detail}`);
  console.log(`shrunk to ${result.steps} workload steps (from ${steps}); reproduce: npm run simulate -- --seed ${result.seed} --steps ${result.steps} --trace`);
  if (values.trace === true) for (const line of result.trace) console.log(`  ${line}`);
  else console.log(`  (the last steps; --trace prints all ${result.trace.length})`), result.trace.slice(-15).forEach((line) => console.log(`  ${line}`));
}

if (values.seed !== undefined) {
  const result = await simulate({ seed: number(values.seed, 1), steps });
  if (result.violation === null) {
    console.log(`seed ${result.seed}: ok, ${result.steps} steps, ${result.requests} requests, faults ${JSON.stringify(result.faults)}`);
    if (values.trace === true) for (const line of result.trace) console.log(`  ${line}`);
  } else {
    await printFailure(result);
    process.exitCode = 1;
  }
} else {
  const count = number(values.seeds, 100);
  const first = number(values.first, 1);
  const started = performance.now();
  let totalSteps = 0;
  let totalRequests = 0;
  const faults: Record<string, number> = {};
  let failed = 0;
  let seedsRun = 0;
  for (let seed = first; seed < first + count; seed++) {
    seedsRun++;
    const result = await simulate({ seed, steps });
    totalSteps += result.steps;
    totalRequests += result.requests;
    for (const [name, times] of Object.entries(result.faults)) faults[name] = (faults[name] ?? 0) + times;
    if (result.violation !== null) {
      failed++;
      await printFailure(result);
      break;
    }
  }
  const seconds = (performance.now() - started) / 1_000;
  const verdict = failed > 0 ? `stopped at the first failing seed, the ${seedsRun}th run` : `${seedsRun} seeds passed`;
  console.log(
    `${verdict} in ${seconds.toFixed(1)} s (${(seedsRun / seconds).toFixed(1)} seeds/s); ${totalSteps} steps, ${totalRequests} requests; ` +
      `faults injected ${JSON.stringify(faults)} (${(Object.values(faults).reduce((sum, times) => sum + times, 0) / seedsRun).toFixed(1)} per run)`,
  );
  if (failed > 0) process.exitCode = 1;
}
process.exit();
