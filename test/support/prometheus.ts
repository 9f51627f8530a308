/**
 * A reader of the Prometheus text exposition format (version 0.0.4), enough for tests: samples
 * by series, `# TYPE` lines by metric. Series keys are written as Prometheus prints them, with
 * labels sorted by name: `wse_messages_dropped_total{cause="slow_consumer"}`.
 */
export interface Exposition {
  /** Every sample, by series key. */
  readonly samples: ReadonlyMap<string, number>;
  /** `# TYPE` of each metric family. */
  readonly types: ReadonlyMap<string, string>;
  /** The value of a series; throws, naming the series, when it is missing. */
  value(name: string, labels?: Record<string, string>): number;
  /** True when the series has a sample. */
  has(name: string, labels?: Record<string, string>): boolean;
  /** Every sample of a metric name whatever its labels, as [labels, value]. */
  series(name: string): Array<[Record<string, string>, number]>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The key of a series: name, then labels sorted by name. */
export function seriesKey(name: string, labels: Record<string, string> = {}): string {
  const names = Object.keys(labels).sort();
  if (names.length === 0) return name;
  return `${name}{${names.map((label) => `${label}="${labels[label]}"`).join(',')}}`;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** Parses an exposition; throws on a line that is neither a comment, blank, nor a sample. */
export function parseExposition(text: string): Exposition {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const byName = new Map<string, Array<[Record<string, string>, number]>>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type !== null) types.set(type[1], type[2]);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    const [, name, labelText = '', valueText] = match;
    const labels: Record<string, string> = {};
    for (const label of labelText.matchAll(LABEL)) labels[label[1]] = label[2];
    const value = parseValue(valueText);
    samples.set(seriesKey(name, labels), value);
    const list = byName.get(name) ?? [];
    list.push([labels, value]);
    byName.set(name, list);
  }
  return {
    samples,
    types,
    value(name, labels) {
      const key = seriesKey(name, labels);
      const value = samples.get(key);
      if (value === undefined) throw new Error(`no sample ${key} in the exposition`);
      return value;
    },
    has: (name, labels) => samples.has(seriesKey(name, labels)),
    series: (name) => byName.get(name) ?? [],
  };
}
