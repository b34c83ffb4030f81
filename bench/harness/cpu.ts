/**
 * CPU accounting from /proc: how many CPU seconds a process and everything below it used over a
 * measured window. A contender's cost is its own process plus its store's server (PostgreSQL's
 * postmaster and every backend and background process under it, or redis-server).
 *
 * A process tree's total at one moment is, for the root and every live descendant, its own
 * user + system time plus the time of its children that have ended and been reaped (cutime +
 * cstime). When a backend exits, its time moves into its parent's cutime/cstime, so the total
 * stays continuous and the difference between two samples counts every process that ran
 * inside the window, even one that started or ended in it.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessTimes {
  readonly pid: number;
  readonly command: string;
  readonly parentPid: number;
  /** user + system + reaped children's user + system, in clock ticks. */
  readonly ticks: number;
}

/**
 * The fields of a /proc/PID/stat (or /proc/PID/task/TID/stat) line after the command name, from
 * `state` on. The command name is in parentheses and may itself hold spaces and parentheses, so
 * the fields are counted from the last `)`.
 */
function statFields(text: string): { readonly open: number; readonly close: number; readonly number: (index: number) => number } {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/PID/stat line: ${text.slice(0, 80)}`);
  // After ") ": state(3) ppid(4) pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime cutime cstime
  const fields = text.slice(close + 2).split(' ');
  const number = (index: number): number => {
    const value = Number(fields[index]);
    if (!Number.isFinite(value)) throw new Error(`field ${index + 3} of a /proc/PID/stat line is not a number`);
    return value;
  };
  return { open, close, number };
}

/** Parses one /proc/PID/stat line: the process's own ticks and its waited-for children's. */
export function parseProcessStat(text: string): ProcessTimes {
  const { open, close, number } = statFields(text);
  return {
    pid: Number(text.slice(0, open).trim()),
    command: text.slice(open + 1, close),
    parentPid: number(1),
    ticks: number(11) + number(12) + number(13) + number(14),
  };
}

/**
 * A thread's own user + system clock ticks, from a /proc/PID/task/TID/stat line. Only utime and
 * stime: a thread's line repeats the process's children's ticks, which would count once per thread.
 */
export function parseThreadTicks(text: string): number {
  const { number } = statFields(text);
  return number(11) + number(12);
}

/**
 * The clock ticks of a process's main thread and of all its other threads. For Node, the main
 * thread runs the JavaScript and the event loop; the others are V8's compiler and collector
 * helpers and libuv's pool.
 */
export function threadTicks(pid: number): { readonly mainThread: number; readonly otherThreads: number } {
  let mainThread = 0;
  let otherThreads = 0;
  for (const thread of readdirSync(`/proc/${pid}/task`)) {
    let ticks: number;
    try {
      ticks = parseThreadTicks(readFileSync(`/proc/${pid}/task/${thread}/stat`, 'utf8'));
    } catch {
      // The thread ended while the list was read; its time is lost to this sample (a helper thread, never the main one).
      continue;
    }
    if (Number(thread) === pid) mainThread += ticks;
    else otherThreads += ticks;
  }
  return { mainThread, otherThreads };
}

/** Every process of the machine that could be read, by pid. */
export function readProcessTable(): Map<number, ProcessTimes> {
  const table = new Map<number, ProcessTimes>();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      table.set(Number(entry), parseProcessStat(readFileSync(`/proc/${entry}/stat`, 'utf8')));
    } catch {
      // The process ended while the table was read; its time is in its parent's cutime by now.
    }
  }
  return table;
}

/** The clock ticks of `rootPid` and every live process below it. */
export function treeTicks(table: ReadonlyMap<number, ProcessTimes>, rootPid: number): number {
  const children = new Map<number, number[]>();
  for (const times of table.values()) {
    const siblings = children.get(times.parentPid);
    if (siblings === undefined) children.set(times.parentPid, [times.pid]);
    else siblings.push(times.pid);
  }
  let ticks = 0;
  const queue = [rootPid];
  const seen = new Set<number>();
  while (queue.length > 0) {
    const pid = queue.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    ticks += table.get(pid)?.ticks ?? 0;
    queue.push(...(children.get(pid) ?? []));
  }
  return ticks;
}

/** Clock ticks per second (USER_HZ): 100 on every common Linux, asked of getconf where it exists. */
export const clockTicksPerSecond: number = (() => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isSafeInteger(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

/** A group of processes whose CPU is counted together: this process, or a tree under a pid. */
export type CpuSubject = { readonly label: string; readonly pid: number | 'self' };

export interface CpuWindow {
  readonly seconds: number;
  /** CPU seconds used in the window, per subject label. */
  readonly cpuSeconds: Readonly<Record<string, number>>;
}

function sample(subjects: readonly CpuSubject[]): { atMs: number; cpu: Record<string, number> } {
  const table = subjects.some((subject) => subject.pid !== 'self') ? readProcessTable() : new Map<number, ProcessTimes>();
  const cpu: Record<string, number> = {};
  for (const subject of subjects) {
    if (subject.pid === 'self') {
      // process.cpuUsage counts every thread of this process (worker threads too), in microseconds.
      const usage = process.cpuUsage();
      cpu[subject.label] = (usage.user + usage.system) / 1e6;
    } else {
      cpu[subject.label] = treeTicks(table, subject.pid) / clockTicksPerSecond;
    }
  }
  return { atMs: performance.now(), cpu };
}

/** Samples at `begin` and `end`; `end` returns what each subject used in between. */
export class CpuMeter {
  private started: ReturnType<typeof sample> | undefined;

  constructor(private readonly subjects: readonly CpuSubject[]) {}

  begin(): void {
    this.started = sample(this.subjects);
  }

  end(): CpuWindow {
    if (this.started === undefined) throw new Error('CpuMeter.end before begin');
    const ended = sample(this.subjects);
    const cpuSeconds: Record<string, number> = {};
    for (const subject of this.subjects) cpuSeconds[subject.label] = ended.cpu[subject.label]! - this.started.cpu[subject.label]!;
    return { seconds: (ended.atMs - this.started.atMs) / 1000, cpuSeconds };
  }
}

/** The parent of a process (for a PostgreSQL backend: its postmaster), or undefined if unreadable. */
export function parentOf(pid: number): number | undefined {
  try {
    return parseProcessStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).parentPid;
  } catch {
    return undefined;
  }
}
