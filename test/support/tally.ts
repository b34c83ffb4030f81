/** Counts outcomes by kind: `okKey` for a success, the refusal's reason otherwise. */
export function tally(results: readonly ({ readonly ok: true } | { readonly ok: false; readonly reason: string })[], okKey = 'order'): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const result of results) {
    const key = result.ok ? okKey : result.reason;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
