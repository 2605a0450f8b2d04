/**
 * Renders benchmark results as one self-contained SVG for docs/performance.md: no
 * external fonts, scripts or styles, the system sans-serif, and the same
 * bytes for the same input (no dates, random ids or locale formatting).
 *
 * One row per contender, two panels sharing the rows: on the left the
 * throughput as horizontal bars with the value at the bar end; on the right
 * the latency percentiles p50, p95, p99 and max as dots on a log axis, with
 * the figures written under the dots. A contender without latency shows n/a.
 *
 * Self-check: `npx tsx bench/lib/svg-chart.ts /tmp/x.svg` writes a sample.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ChartInput {
  /** e.g. "Accept endpoint, 2 cores (…)" */
  title: string;
  /** e.g. the command and date */
  subtitle: string;
  contenders: {
    name: string;
    throughputRps: number;
    latencyMs: { p50: number; p95: number; p99: number; max: number } | null;
  }[];
}

const WIDTH = 900;
const MARGIN = 20;
const GAP = 36; // between the two panels
const ROW_HEIGHT = 54;
const BAR_HEIGHT = 20;
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";

const INK = '#1f2328';
const MUTED = '#57606a';
const GRID = '#d0d7de';
const BAND = '#f6f8fa';
const BAR = '#4c78a8';
const SERIES = [
  { key: 'p50', label: 'p50', color: '#4c78a8', hollow: false },
  { key: 'p95', label: 'p95', color: '#f58518', hollow: false },
  { key: 'p99', label: 'p99', color: '#d62728', hollow: false },
  { key: 'max', label: 'max', color: '#6e7781', hollow: true },
] as const;

/** Wide enough for DejaVu Sans, the widest common fallback, so labels never collide. */
function textWidth(text: string, fontSize: number): number {
  return [...text].length * fontSize * 0.62;
}

export function escapeXml(text: string): string {
  return (
    text
      // Characters XML 1.0 forbids outright.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

/** Fixed coordinates keep the output stable and short. */
function n(value: number): string {
  return String(Math.round(value * 10) / 10);
}

/** 11000 -> "11,000"; locale-independent. */
function formatInt(value: number): string {
  const rounded = Math.round(value);
  const sign = rounded < 0 ? '-' : '';
  return sign + String(Math.abs(rounded)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Latency in ms with at most three significant digits: 4, 12.3, 0.85, 1,234. */
function formatMs(value: number): string {
  if (!Number.isFinite(value)) return '?';
  if (Math.abs(value) >= 100) return formatInt(value);
  return String(Number(value.toPrecision(3)));
}

/** Splits text into lines no wider than maxWidth, at spaces where possible. */
function wrap(text: string, fontSize: number, maxWidth: number): string[] {
  const maxChars = Math.max(8, Math.floor(maxWidth / (fontSize * 0.62)));
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    let rest = word;
    while ([...rest].length > maxChars) {
      if (line) {
        lines.push(line);
        line = '';
      }
      const chars = [...rest];
      lines.push(chars.slice(0, maxChars).join(''));
      rest = chars.slice(maxChars).join('');
    }
    if (!line) line = rest;
    else if ([...line].length + 1 + [...rest].length <= maxChars) line += ` ${rest}`;
    else {
      lines.push(line);
      line = rest;
    }
  }
  if (line) lines.push(line);
  return lines.length > 0 ? lines : [''];
}

/** Shortens a label to fit maxWidth, with an ellipsis. */
function fit(text: string, fontSize: number, maxWidth: number): string {
  const chars = [...text];
  const maxChars = Math.max(1, Math.floor(maxWidth / (fontSize * 0.62)));
  return chars.length <= maxChars ? text : `${chars.slice(0, maxChars - 1).join('')}…`;
}

/**
 * Ticks for a linear axis from 0 to max: multiples of the smallest 1-2-2.5-5
 * step that keeps them at least minGap pixels apart over the given width.
 */
function linearTicks(max: number, width: number, minGap: number): number[] {
  // Whole requests per second: no fractional ticks.
  let magnitude = Math.max(1, 10 ** Math.floor(Math.log10(max / 20)));
  let step = magnitude;
  search: for (;;) {
    for (const m of [1, 2, 2.5, 5]) {
      step = m * magnitude;
      if ((step / max) * width >= minGap) break search;
    }
    magnitude *= 10;
  }
  const ticks: number[] = [];
  for (let i = 0; i * step <= max * (1 + 1e-9); i += 1)
    ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

/** Decade-aligned bounds and 1-2-5 ticks for a log axis. */
function logTicks(min: number, max: number): { lo: number; hi: number; ticks: number[] } {
  let lo = 10 ** Math.floor(Math.log10(min));
  let hi = 10 ** Math.ceil(Math.log10(max));
  if (hi <= lo) hi = lo * 10;
  // Use a 1-2-5 bound when it is tighter than the decade, so the dots use the width.
  for (const m of [5, 2]) if (min >= lo * m) lo = Number((lo * m).toPrecision(12));
  for (const m of [0.2, 0.5]) {
    const candidate = Number((hi * m).toPrecision(12));
    if (max <= candidate && candidate > lo) {
      hi = candidate;
      break;
    }
  }
  const decades = Math.log10(hi / lo);
  const multipliers =
    decades > 4
      ? [1]
      : decades > 2.5
        ? [1, 3]
        : decades > 1.2
          ? [1, 2, 5]
          : [1, 1.5, 2, 3, 4, 5, 7];
  const ticks: number[] = [];
  for (let d = 10 ** Math.floor(Math.log10(lo)); d <= hi * 1.0001; d *= 10) {
    for (const m of multipliers) {
      const t = Number((d * m).toPrecision(12));
      if (t >= lo * 0.9999 && t <= hi * 1.0001) ticks.push(t);
    }
  }
  return { lo, hi, ticks };
}

export function renderChart(results: ChartInput): string {
  const contenders = results.contenders;
  const out: string[] = [];
  const text = (
    x: number,
    y: number,
    content: string,
    attrs: { size?: number; anchor?: 'start' | 'middle' | 'end'; fill?: string; weight?: string },
  ) => {
    const size = attrs.size ?? 13;
    const parts = [`x="${n(x)}"`, `y="${n(y)}"`, `font-size="${size}"`];
    if (attrs.anchor && attrs.anchor !== 'start') parts.push(`text-anchor="${attrs.anchor}"`);
    if (attrs.fill && attrs.fill !== INK) parts.push(`fill="${attrs.fill}"`);
    if (attrs.weight) parts.push(`font-weight="${attrs.weight}"`);
    out.push(`<text ${parts.join(' ')}>${escapeXml(content)}</text>`);
  };

  // ---- header
  const innerWidth = WIDTH - 2 * MARGIN;
  const titleLines = wrap(results.title, 18, innerWidth);
  const subtitleLines = wrap(results.subtitle, 12, innerWidth);
  let y = MARGIN + 16;
  const header: (() => void)[] = [];
  for (const line of titleLines) {
    const at = y;
    header.push(() => text(MARGIN, at, line, { size: 18, weight: 'bold' }));
    y += 23;
  }
  y += 1;
  for (const line of results.subtitle.trim() ? subtitleLines : []) {
    const at = y;
    header.push(() => text(MARGIN, at, line, { size: 12, fill: MUTED }));
    y += 16;
  }
  const panelTitleY = y + 18;
  const legendY = panelTitleY + 20;
  const rowsTop = legendY + 16;
  const rowsBottom = rowsTop + Math.max(1, contenders.length) * ROW_HEIGHT;
  const axisLabelY = rowsBottom + 16;
  const height = axisLabelY + MARGIN;

  // ---- columns
  const longestName = Math.max(0, ...contenders.map((c) => textWidth(c.name, 13)));
  const nameWidth = Math.min(170, Math.max(60, longestName));
  const leftStart = MARGIN + nameWidth + 10;
  const panelWidth = (WIDTH - MARGIN - leftStart - GAP) / 2;
  const leftEnd = leftStart + panelWidth;
  const rightStart = leftEnd + GAP;
  const rightEnd = WIDTH - MARGIN - 8;

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${n(height)}" ` +
      `viewBox="0 0 ${WIDTH} ${n(height)}" font-family="${escapeXml(FONT)}" fill="${INK}">`,
  );
  out.push(`<title>${escapeXml(results.title)}</title>`);
  out.push(`<rect width="${WIDTH}" height="${n(height)}" fill="#ffffff"/>`);
  for (const draw of header) draw();

  // ---- row bands and names
  contenders.forEach((c, i) => {
    const top = rowsTop + i * ROW_HEIGHT;
    if (i % 2 === 0) {
      out.push(
        `<rect x="${MARGIN - 6}" y="${n(top)}" width="${WIDTH - 2 * MARGIN + 12}" ` +
          `height="${ROW_HEIGHT}" fill="${BAND}"/>`,
      );
    }
    text(leftStart - 10, top + ROW_HEIGHT / 2 + 2.5, fit(c.name, 13, nameWidth), {
      anchor: 'end',
      weight: 'bold',
    });
  });
  if (contenders.length === 0) {
    text(WIDTH / 2, rowsTop + ROW_HEIGHT / 2, 'no contenders', { anchor: 'middle', fill: MUTED });
  }

  // ---- left panel: throughput
  text(leftStart, panelTitleY, 'Throughput (requests/s, higher is better)', {
    size: 13,
    weight: 'bold',
  });
  const rpsValues = contenders.map((c) =>
    Number.isFinite(c.throughputRps) ? Math.max(0, c.throughputRps) : 0,
  );
  const valueReserve = Math.max(40, ...rpsValues.map((v) => textWidth(formatInt(v), 12) + 10));
  const barMaxWidth = panelWidth - valueReserve;
  // The longest bar spans the panel; the printed values carry the precision.
  const rpsTop = Math.max(0, ...rpsValues) || 1;
  const xRps = (v: number) => leftStart + (v / rpsTop) * barMaxWidth;
  const rpsTicks = contenders.length > 0 ? linearTicks(rpsTop, barMaxWidth, 64) : [];
  for (const t of rpsTicks) {
    const x = xRps(t);
    out.push(
      `<line x1="${n(x)}" y1="${n(rowsTop)}" x2="${n(x)}" y2="${n(rowsBottom)}" ` +
        `stroke="${GRID}" stroke-width="1"${t === 0 ? '' : ' stroke-dasharray="2 3"'}/>`,
    );
  }
  // Thin ticks labels out so neighbours never touch.
  let lastLabelEnd = -Infinity;
  for (const t of rpsTicks) {
    const label = formatInt(t);
    const x = xRps(t);
    const half = textWidth(label, 11) / 2;
    if (x - half < lastLabelEnd + 6) continue;
    text(x, axisLabelY, label, { size: 11, anchor: 'middle', fill: MUTED });
    lastLabelEnd = x + half;
  }
  contenders.forEach((c, i) => {
    const center = rowsTop + i * ROW_HEIGHT + ROW_HEIGHT / 2 - 2;
    const value = rpsValues[i] ?? 0;
    const width = Math.max(value > 0 ? 1 : 0, xRps(value) - leftStart);
    out.push(
      `<rect x="${n(leftStart)}" y="${n(center - BAR_HEIGHT / 2)}" width="${n(width)}" ` +
        `height="${BAR_HEIGHT}" rx="2" fill="${BAR}"/>`,
    );
    const label = Number.isFinite(c.throughputRps) ? formatInt(value) : 'n/a';
    text(leftStart + width + 6, center + 4.5, label, { size: 12, weight: 'bold' });
  });

  // ---- right panel: latency
  text(rightStart, panelTitleY, 'Latency (ms, log scale, lower is better)', {
    size: 13,
    weight: 'bold',
  });
  let legendX = rightStart;
  for (const s of SERIES) {
    out.push(marker(legendX + 5, legendY - 4, s.color, s.hollow));
    text(legendX + 14, legendY, s.label, { size: 12, fill: MUTED });
    legendX += 14 + textWidth(s.label, 12) + 18;
  }

  const positives = contenders.flatMap((c) =>
    c.latencyMs
      ? [c.latencyMs.p50, c.latencyMs.p95, c.latencyMs.p99, c.latencyMs.max].filter(
          (v) => Number.isFinite(v) && v > 0,
        )
      : [],
  );
  const log =
    positives.length > 0 ? logTicks(Math.min(...positives), Math.max(...positives)) : null;
  const xMs = (v: number) => {
    if (!log) return rightStart;
    const clamped = Math.min(log.hi, Math.max(log.lo, v));
    return (
      rightStart +
      (Math.log10(clamped / log.lo) / Math.log10(log.hi / log.lo)) * (rightEnd - rightStart)
    );
  };
  if (log) {
    let lastEnd = -Infinity;
    for (const t of log.ticks) {
      const x = xMs(t);
      out.push(
        `<line x1="${n(x)}" y1="${n(rowsTop)}" x2="${n(x)}" y2="${n(rowsBottom)}" ` +
          `stroke="${GRID}" stroke-width="1"${t === log.lo ? '' : ' stroke-dasharray="2 3"'}/>`,
      );
      const label = formatMs(t);
      const half = textWidth(label, 11) / 2;
      if (x - half < lastEnd + 6) continue;
      text(x, axisLabelY, label, { size: 11, anchor: 'middle', fill: MUTED });
      lastEnd = x + half;
    }
  }
  contenders.forEach((c, i) => {
    const top = rowsTop + i * ROW_HEIGHT;
    const center = top + ROW_HEIGHT / 2 - 8;
    const latency = c.latencyMs;
    if (!latency || !log) {
      text((rightStart + rightEnd) / 2, top + ROW_HEIGHT / 2 + 2, 'n/a', {
        size: 13,
        anchor: 'middle',
        fill: MUTED,
      });
      return;
    }
    const xs = SERIES.map((s) => xMs(latency[s.key]));
    out.push(
      `<line x1="${n(Math.min(...xs))}" y1="${n(center)}" x2="${n(Math.max(...xs))}" ` +
        `y2="${n(center)}" stroke="#8c959f" stroke-width="2"/>`,
    );
    // max first, so the percentiles are drawn over it.
    for (const index of [3, 0, 1, 2]) {
      const s = SERIES[index]!;
      out.push(marker(xs[index]!, center, s.color, s.hollow));
    }
    // En spaces: SVG collapses ordinary runs of spaces.
    const summary = SERIES.map((s) => `${s.label} ${formatMs(latency[s.key])}`).join(
      '\u2002·\u2002',
    );
    text(rightStart, top + ROW_HEIGHT - 9, `${summary} ms`, { size: 11, fill: MUTED });
  });

  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function marker(x: number, y: number, color: string, hollow: boolean): string {
  return hollow
    ? `<circle cx="${n(x)}" cy="${n(y)}" r="4.5" fill="#ffffff" stroke="${color}" stroke-width="2"/>`
    : `<circle cx="${n(x)}" cy="${n(y)}" r="5.5" fill="${color}" stroke="#ffffff" stroke-width="1"/>`;
}

// ------------------------------------------------------------- self-check

const SAMPLE: ChartInput = {
  title: 'Accept endpoint, 2 cores (sample data)',
  subtitle:
    'npx tsx bench/run.ts --connections 100 --duration 30s · 2026-01-01 · figures are made up',
  contenders: [
    { name: 'ours', throughputRps: 9000, latencyMs: { p50: 4, p95: 9, p99: 18, max: 60 } },
    { name: 'ceiling', throughputRps: 11000, latencyMs: { p50: 3, p95: 7, p99: 12, max: 40 } },
    { name: 'naive', throughputRps: 900, latencyMs: { p50: 80, p95: 150, p99: 220, max: 400 } },
    { name: 'no <latency> & co', throughputRps: 450, latencyMs: null },
  ],
};

const invokedPath = process.argv[1];
if (invokedPath && resolve(invokedPath) === fileURLToPath(import.meta.url)) {
  const target = process.argv[2] ?? 'chart-sample.svg';
  writeFileSync(target, renderChart(SAMPLE));
  console.log(`wrote ${target}`);
}
