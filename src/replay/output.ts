/** The replay report for people: per item and slice, then every violation, then the verdict. */
import type { ReplayOutcome } from './verify.js';

export function printOutcome(outcome: ReplayOutcome & { verified: boolean; rebuiltSlices: number }): void {
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  const until = outcome.until === null ? '' : 'atMs' in outcome.until ? ` as of ${new Date(outcome.until.atMs).toISOString()}` : ` as of sequence ${outcome.until.sequence} of each slice`;
  out(`replay of ${outcome.source}${until}: ${outcome.items} items, ${outcome.events} events in ${outcome.seconds.toFixed(2)} s`);
  for (const totals of outcome.itemTotals) {
    out(
      `item ${totals.itemId}: stock ${totals.stock} = available ${totals.available} + reserved ${totals.reserved} + sold ${totals.sold}` +
        (totals.inTransfer === 0 ? '' : `; ${totals.inTransfer} units in transfer between slices`),
    );
    for (const slice of outcome.slices.filter((candidate) => candidate.itemId === totals.itemId).sort((left, right) => left.sliceIndex - right.sliceIndex)) {
      out(
        `  slice ${slice.sliceIndex} (id ${slice.sliceId}, database ${slice.databaseIndex}): ${slice.events} events to sequence ${slice.lastSequence}; ` +
          `stock ${slice.stock}, available ${slice.available}, reserved ${slice.reserved}, sold ${slice.sold}; ` +
          `transfers ${slice.transfersOut} out, ${slice.transfersIn} in; reservations ${slice.openReservations} open, ` +
          `${slice.expiredReservations} expired, ${slice.cancelledReservations} cancelled; ${slice.cancelledOrders} orders cancelled`,
      );
    }
  }
  if (outcome.rebuiltSlices > 0) out(`rebuilt the projections of ${outcome.rebuiltSlices} slice(s) from their journals`);
  for (const violation of outcome.violations) {
    const where = `item ${violation.itemId}${violation.sliceIndex === null ? '' : ` slice ${violation.sliceIndex}`}${violation.sequence === null ? '' : ` sequence ${violation.sequence}`}`;
    out(`VIOLATION ${where}: ${violation.invariant}: expected ${violation.expected}, found ${violation.found}`);
  }
  if (outcome.verified) {
    out(outcome.violations.length === 0 ? 'verified: every invariant holds' : `NOT verified: ${outcome.violations.length} violation(s)`);
  }
}
