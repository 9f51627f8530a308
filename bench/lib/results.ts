/** One repetition's figures for one (scenario, case, system). */
export interface Measurement {
  readonly scenario: string;
  readonly case: string;
  readonly system: string;
  readonly rep: number;
  readonly values: Readonly<Record<string, number>>;
}

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A measured curve: rows of numbers, the first the time in ms (the storm's clients over time). */
export interface Series {
  readonly scenario: string;
  readonly case: string;
  readonly system: string;
  readonly rep: number;
  readonly points: readonly (readonly number[])[];
}

export class Results {
  readonly measurements: Measurement[] = [];
  readonly series: Series[] = [];
  /** Notes the run wants in the report (failures, skipped cases), in order. */
  readonly notes: string[] = [];

  add(scenario: string, kase: string, system: string, rep: number, values: Record<string, number>): void {
    this.measurements.push({ scenario, case: kase, system, rep, values });
  }

  addSeries(scenario: string, kase: string, system: string, rep: number, points: readonly (readonly number[])[]): void {
    this.series.push({ scenario, case: kase, system, rep, points });
  }

  note(text: string): void {
    this.notes.push(text);
    console.log(`  note: ${text}`);
  }

  values(scenario: string, kase: string, system: string, metric: string): number[] {
    return this.measurements
      .filter((m) => m.scenario === scenario && m.case === kase && m.system === system && metric in m.values)
      .map((m) => m.values[metric]);
  }

  summary(scenario: string, kase: string, system: string, metric: string): Summary | undefined {
    const values = this.values(scenario, kase, system, metric).filter((v) => Number.isFinite(v));
    if (values.length === 0) return undefined;
    return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length };
  }

  med(scenario: string, kase: string, system: string, metric: string): number {
    return this.summary(scenario, kase, system, metric)?.median ?? Number.NaN;
  }
}
