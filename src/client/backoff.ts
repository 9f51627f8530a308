/** How long the client waits before each reconnect attempt. */
export interface WseBackoffOptions {
  /** Upper bound of the first wait (the one right after a connection is lost). @default 1000 */
  initialDelayMs: number;
  /** The bound grows by this factor with each failed attempt. @default 1.5 */
  factor: number;
  /** The bound never grows past this. @default 30000 */
  maxDelayMs: number;
}

/** The defaults of {@link WseBackoffOptions}. */
export const WSE_BACKOFF_DEFAULTS: Readonly<WseBackoffOptions> = Object.freeze({
  initialDelayMs: 1000,
  factor: 1.5,
  maxDelayMs: 30_000,
});

/**
 * The wait before reconnect attempt `failures + 1`, in whole milliseconds: "full jitter", a
 * uniform draw from [0, min(maxDelayMs, initialDelayMs * factor^failures)).
 *
 * Why full jitter: when a server restarts, every client it had loses its connection in the same
 * instant. With a fixed or lightly jittered schedule they all come back in the same instant too,
 * and again at each step. Drawn from the whole range, 10,000 clients arrive spread over the first
 * second, those refused (the server still starting) over the next 1.5 s, then 2.25 s, and so on.
 * The bound grows by 1.5, not 2: a server back after a restart of a few seconds is reached within
 * a few seconds more (with 2, the bounds pass 8 s by then), while the arrivals stay spread over
 * a window that widens with every failure.
 * Pure: `random` is a parameter (`Math.random` in the client), so tests check exact delays.
 */
export function reconnectDelay(failures: number, options: WseBackoffOptions, random: () => number): number {
  const bound = Math.min(options.maxDelayMs, options.initialDelayMs * options.factor ** failures);
  return Math.floor(random() * bound);
}
