/**
 * What the benchmarks read about processes, theirs and the server's they start: the V8 flags
 * `npm start` runs the server with, a process's resident memory, and the open-file limit.
 * CPU time is read by bench/harness/cpu.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The V8 flags of `npm start` (`node FLAGS dist/src/….js …`) in the project's package.json, so
 * that a server or a Node contender runs as the server is run.
 */
export function startScriptFlags(projectDirectory: string): string[] {
  const manifest = JSON.parse(readFileSync(path.join(projectDirectory, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const match = /^node\s+(.*?)\s*dist\/src\/\S+\.js/.exec(manifest.scripts?.start ?? '');
  return (match?.[1] ?? '').split(' ').filter((flag) => flag !== '');
}

/** A process's resident memory now (VmRSS) and at its peak (VmHWM), in MB, from /proc/PID/status. */
export function residentMemoryMb(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(/\s(\d+) kB/.exec(status.split('\n').find((line) => line.startsWith(name)) ?? '')?.[1] ?? 0) / 1024;
  return { rssMb: field('VmRSS:'), peakMb: field('VmHWM:') };
}

/** This process's open-file limits, from /proc/self/limits. */
export function openFileLimit(): { soft: number; hard: number } {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const line = limits.split('\n').find((entry) => entry.startsWith('Max open files'));
  const [soft, hard] = (line?.split(/\s{2,}/).slice(1, 3) ?? []).map((value) =>
    value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value),
  );
  return { soft: soft ?? 1_024, hard: hard ?? 1_024 };
}
