import type { LoopResult } from './apis.js';
import { clockMs } from './clock.js';

/**
 * Publishes `perTurn` messages per event-loop turn (setImmediate) until `durationMs` is over.
 * Each message is stamped with the time it is published.
 */
export function runBurst(
  perTurn: number,
  durationMs: number,
  publish: (seq: number, nowMs: number) => void,
): Promise<LoopResult> {
  return runTurns(() => perTurn, durationMs, publish);
}

/**
 * The setImmediate loop of runBurst and runFlood: each turn publishes `countThisTurn()` messages,
 * until `durationMs` is over.
 */
function runTurns(
  countThisTurn: () => number,
  durationMs: number,
  publish: (seq: number, nowMs: number) => void,
): Promise<LoopResult> {
  return new Promise((resolve, reject) => {
    const startMs = clockMs();
    const endAt = startMs + durationMs;
    let seq = 0;
    const turn = (): void => {
      try {
        const count = countThisTurn();
        for (let i = 0; i < count; i++) publish(seq++, clockMs());
      } catch (error) {
        reject(error as Error);
        return;
      }
      const now = clockMs();
      if (now < endAt) setImmediate(turn);
      else resolve({ published: seq, startMs, endMs: now });
    };
    setImmediate(turn);
  });
}

/** A paced loop further behind its schedule than this stops: the rate is plainly not held. */
const MAX_LAG_MS = 1_000;

/**
 * An open-loop publisher at a fixed rate. Message n is stamped with its scheduled time
 * (start + n / rate), not with the moment it finally goes out: a publisher held up by a busy
 * event loop shows up as latency instead of hiding it (no coordinated omission). Whatever is
 * due when the timer fires is published at once, so a loaded server publishes in batches. A
 * server that falls more than a second behind stops publishing (bounded time).
 */
export function runPaced(
  rate: number,
  durationMs: number,
  publish: (seq: number, scheduledMs: number) => void,
): Promise<LoopResult> {
  const total = Math.max(1, Math.round((rate * durationMs) / 1000));
  const intervalMs = 1000 / rate;
  return new Promise((resolve, reject) => {
    const startMs = clockMs();
    let sent = 0;
    const tick = (): void => {
      try {
        const due = Math.min(total, Math.floor((clockMs() - startMs) / intervalMs) + 1);
        while (sent < due) {
          publish(sent, startMs + sent * intervalMs);
          sent++;
          // A fan-out can take long: give up inside a catch-up batch too.
          if ((sent & 15) === 0 && clockMs() - startMs > durationMs + MAX_LAG_MS) break;
        }
      } catch (error) {
        reject(error as Error);
        return;
      }
      const now = clockMs();
      if (sent >= total || now - startMs > durationMs + MAX_LAG_MS) {
        resolve({ published: sent, startMs, endMs: now, scheduled: total, scheduledMs: durationMs });
        return;
      }
      setTimeout(tick, Math.max(0, startMs + sent * intervalMs - clockMs()));
    };
    tick();
  });
}

/**
 * Publishes as fast as the broker takes it: each turn, up to `perTurn`, as many as keep fewer
 * than `window` publishes waiting for their acknowledgement (read once per turn), until
 * `durationMs` is over.
 */
export function runFlood(
  perTurn: number,
  window: number,
  durationMs: number,
  publish: (seq: number, nowMs: number) => void,
  inFlight: () => number,
): Promise<LoopResult> {
  return runTurns(() => Math.min(perTurn, window - inFlight()), durationMs, publish);
}
