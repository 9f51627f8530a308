/** One problem found in the options: where, which rule, and the value that broke it. */
export interface WseConfigProblem {
  /** `maxConnections`, `auth.jwtSecret`, or an environment variable such as `PORT`. */
  readonly path: string;
  readonly rule: string;
  readonly value: unknown;
}

/**
 * Thrown at start when options (or the environment of the example server) are invalid. It lists
 * every problem at once so one restart fixes them all.
 */
export class WseConfigError extends Error {
  override readonly name = 'WseConfigError';

  constructor(
    readonly problems: readonly WseConfigProblem[],
    source = 'WseModule options',
  ) {
    super(
      `Invalid ${source}:\n` +
        problems.map((p) => `  - ${p.path}: ${p.rule} (got ${describeValue(p.value)})`).join('\n'),
    );
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
