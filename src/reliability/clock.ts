/** Milliseconds since some fixed point; `Date.now` in production, a fake in tests. */
export type Clock = () => number;

/** A number in [0, 1); `Math.random` in production, a fixed sequence in tests. */
export type RandomSource = () => number;
