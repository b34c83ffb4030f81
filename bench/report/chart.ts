/**
 * The report's chart, drawn as SVG by hand: one row per contender, two panels of horizontal
 * bars, orders/s and CPU µs per order. Both axes are logarithmic because the contenders span
 * three orders of magnitude (a few hundred orders/s to a million), and on a linear axis every
 * bar but the largest would be a sliver. Each bar carries its figure as text.
 */
import { isSkipped, type ContenderReport } from '../harness/result.js';

const rowHeight = 26;
const labelWidth = 370;
const panelWidth = 400;
const gap = 40;
const top = 48;

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function formatFigure(value: number): string {
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Bar length for `value` on a log axis from 10^floor(log min) to 10^ceil(log max), in pixels. */
export function logBarLength(value: number, minimum: number, maximum: number, width: number): number {
  if (!(value > 0)) return 0;
  const low = Math.floor(Math.log10(minimum));
  const high = Math.max(low + 1, Math.ceil(Math.log10(maximum)));
  return Math.max(2, ((Math.log10(value) - low) / (high - low)) * width);
}

function panel(title: string, values: readonly (number | null)[], x: number): string {
  const present = values.filter((value): value is number => value !== null && value > 0);
  const minimum = Math.min(...present, 1);
  const maximum = Math.max(...present, 10);
  const parts = [`<text x="${x}" y="${top - 18}" font-weight="bold">${escapeXml(title)} (log scale)</text>`];
  values.forEach((value, index) => {
    const y = top + index * rowHeight;
    if (value === null || !(value > 0)) {
      parts.push(`<text x="${x}" y="${y + 15}" fill="#888">n/a</text>`);
      return;
    }
    const length = logBarLength(value, minimum, maximum, panelWidth - 80);
    parts.push(`<rect x="${x}" y="${y + 3}" width="${length.toFixed(1)}" height="${rowHeight - 8}" fill="#4a7ab5"/>`);
    parts.push(`<text x="${(x + length + 6).toFixed(1)}" y="${y + 16}">${formatFigure(value)}</text>`);
  });
  return parts.join('\n');
}

export function renderChart(contenders: readonly ContenderReport[]): string {
  const measured = contenders.filter((report) => !isSkipped(report));
  const height = top + Math.max(1, contenders.length) * rowHeight + 16;
  const width = labelWidth + 2 * panelWidth + gap;
  const labels = contenders.map(
    (report, index) =>
      `<text x="${labelWidth - 10}" y="${top + index * rowHeight + 16}" text-anchor="end">${escapeXml(report.title)}${isSkipped(report) ? ' (skipped)' : ''}</text>`,
  );
  const throughput = contenders.map((report) => (isSkipped(report) ? null : report.ordersPerSecond));
  const cpu = contenders.map((report) => (isSkipped(report) ? null : report.cpu.totalUsPerOrder));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...labels,
    panel('orders/s, more is better', throughput, labelWidth),
    panel('CPU µs per order, less is better', cpu, labelWidth + panelWidth + gap),
    measured.length === 0 ? `<text x="${labelWidth}" y="${top + 16}">no contender ran</text>` : '',
    '</svg>',
    '',
  ].join('\n');
}
