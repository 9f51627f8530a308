import type { Summary } from './results.js';

export interface ChartBar {
  readonly label: string;
  readonly color: string;
  readonly summary: Summary | undefined;
}

export interface ChartPanel {
  readonly title: string;
  readonly unit: string;
  readonly bars: readonly ChartBar[];
}

const WIDTH = 960;
const LABEL_WIDTH = 230;
const VALUE_WIDTH = 150;
const BAR_HEIGHT = 18;
const BAR_GAP = 6;
const TITLE_HEIGHT = 28;
const PANEL_GAP = 18;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function formatValue(x: number, unit: string): string {
  if (!Number.isFinite(x)) return 'n/a';
  const v =
    x >= 1e6
      ? `${(x / 1e6).toFixed(2)}M`
      : x >= 1e4
        ? `${Math.round(x / 1e3)}k`
        : x >= 1e3
          ? `${(x / 1e3).toFixed(1)}k`
          : x.toFixed(0);
  return `${v} ${unit}`;
}

/**
 * Horizontal bar panels, one per scenario, each on its own scale (its longest bar is full
 * width); the value is printed at the end of each bar and a thin line spans min to max.
 */
export function renderChart(title: string, subtitle: string, panels: readonly ChartPanel[]): string {
  const parts: string[] = [];
  let y = 50;
  const plotWidth = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20;
  for (const panel of panels) {
    parts.push(`<text x="10" y="${y + 18}" font-size="15" font-weight="bold">${escape(panel.title)}</text>`);
    y += TITLE_HEIGHT;
    const scale = Math.max(1, ...panel.bars.map((b) => (b.summary === undefined ? 0 : b.summary.max)));
    for (const bar of panel.bars) {
      const s = bar.summary;
      parts.push(
        `<text x="${LABEL_WIDTH - 8}" y="${y + BAR_HEIGHT - 5}" font-size="13" text-anchor="end">${escape(bar.label)}</text>`,
      );
      if (s === undefined) {
        parts.push(
          `<text x="${LABEL_WIDTH + 4}" y="${y + BAR_HEIGHT - 5}" font-size="12" fill="#888">not measured</text>`,
        );
      } else {
        const w = Math.max(1, (s.median / scale) * plotWidth);
        parts.push(
          `<rect x="${LABEL_WIDTH}" y="${y}" width="${w.toFixed(1)}" height="${BAR_HEIGHT}" fill="${bar.color}"/>`,
        );
        if (s.n > 1) {
          const x0 = LABEL_WIDTH + (s.min / scale) * plotWidth;
          const x1 = LABEL_WIDTH + (s.max / scale) * plotWidth;
          const cy = y + BAR_HEIGHT / 2;
          parts.push(
            `<line x1="${x0.toFixed(1)}" y1="${cy}" x2="${x1.toFixed(1)}" y2="${cy}" stroke="#222" stroke-width="1.5"/>`,
            `<line x1="${x0.toFixed(1)}" y1="${cy - 4}" x2="${x0.toFixed(1)}" y2="${cy + 4}" stroke="#222" stroke-width="1.5"/>`,
            `<line x1="${x1.toFixed(1)}" y1="${cy - 4}" x2="${x1.toFixed(1)}" y2="${cy + 4}" stroke="#222" stroke-width="1.5"/>`,
          );
        }
        const textX = LABEL_WIDTH + Math.max(w, s.n > 1 ? (s.max / scale) * plotWidth : 0) + 6;
        parts.push(
          `<text x="${textX.toFixed(1)}" y="${y + BAR_HEIGHT - 5}" font-size="12">${escape(formatValue(s.median, panel.unit))}</text>`,
        );
      }
      y += BAR_HEIGHT + BAR_GAP;
    }
    y += PANEL_GAP;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="18" font-weight="bold">${escape(title)}</text>`,
    `<text x="10" y="40" font-size="12" fill="#555">${escape(subtitle)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

export interface ChartLine {
  readonly label: string;
  readonly color: string;
  /** SVG stroke-dasharray, e.g. '6 3'; solid when absent. */
  readonly dash?: string;
  /** [x, y] in the axes' units. */
  readonly points: readonly (readonly [number, number])[];
}

/** Lines over time on one pair of axes (the storm's clients connected over time), with a legend. */
export function renderLineChart(
  title: string,
  subtitle: string,
  lines: readonly ChartLine[],
  axes: { readonly x: string; readonly y: string; readonly yMax: number; readonly marks?: readonly number[] },
): string {
  const left = 70;
  const top = 60;
  const plotWidth = WIDTH - left - 260;
  const plotHeight = 320;
  const xMax = Math.max(1, ...lines.flatMap((l) => l.points.map((p) => p[0])));
  const xStep = xMax > 40 ? 10 : xMax > 16 ? 5 : xMax > 6 ? 2 : 1;
  const sx = (x: number): number => left + (x / xMax) * plotWidth;
  const sy = (y: number): number => top + plotHeight - (y / Math.max(1, axes.yMax)) * plotHeight;
  const parts: string[] = [
    `<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#888"/>`,
  ];
  for (let x = 0; x <= xMax; x += xStep) {
    parts.push(
      `<line x1="${sx(x).toFixed(1)}" y1="${top + plotHeight}" x2="${sx(x).toFixed(1)}" y2="${top}" stroke="#eee"/>`,
      `<text x="${sx(x).toFixed(1)}" y="${top + plotHeight + 16}" font-size="11" text-anchor="middle">${x}</text>`,
    );
  }
  for (let i = 0; i <= 4; i++) {
    const y = (axes.yMax * i) / 4;
    parts.push(
      `<line x1="${left}" y1="${sy(y).toFixed(1)}" x2="${left + plotWidth}" y2="${sy(y).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${(sy(y) + 4).toFixed(1)}" font-size="11" text-anchor="end">${escape(formatValue(y, '').trim())}</text>`,
    );
  }
  for (const mark of axes.marks ?? []) {
    parts.push(
      `<line x1="${sx(mark).toFixed(1)}" y1="${top}" x2="${sx(mark).toFixed(1)}" y2="${top + plotHeight}" stroke="#c62828" stroke-dasharray="2 3"/>`,
    );
  }
  parts.push(
    `<text x="${left + plotWidth / 2}" y="${top + plotHeight + 34}" font-size="12" text-anchor="middle">${escape(axes.x)}</text>`,
    `<text x="16" y="${top + plotHeight / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${top + plotHeight / 2})">${escape(axes.y)}</text>`,
  );
  lines.forEach((line, i) => {
    const d = line.points
      .map((p, j) => `${j === 0 ? 'M' : 'L'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`)
      .join(' ');
    const dash = line.dash === undefined ? '' : ` stroke-dasharray="${line.dash}"`;
    if (d !== '') parts.push(`<path d="${d}" fill="none" stroke="${line.color}" stroke-width="1.6"${dash}/>`);
    const ly = top + 10 + i * 20;
    parts.push(
      `<line x1="${left + plotWidth + 16}" y1="${ly}" x2="${left + plotWidth + 46}" y2="${ly}" stroke="${line.color}" stroke-width="2"${dash}/>`,
      `<text x="${left + plotWidth + 52}" y="${ly + 4}" font-size="12">${escape(line.label)}</text>`,
    );
  });
  const height = top + plotHeight + 50;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="18" font-weight="bold">${escape(title)}</text>`,
    `<text x="10" y="40" font-size="12" fill="#555">${escape(subtitle)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
