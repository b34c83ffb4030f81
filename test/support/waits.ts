/**
 * How long a test waits (vi.waitFor) for a commit, a flush or a projection to show: vitest's
 * default of 1 s is too short for the first flush of a fresh pool on a loaded 2-core machine
 * (it failed once in .ci/run).
 */
export const commitWait = { timeout: 10_000 } as const;
